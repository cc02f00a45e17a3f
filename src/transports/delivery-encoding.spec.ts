import { describe, expect, it } from '@jest/globals';
import { Decoder, Encoder, type Packet, PacketType } from 'socket.io-parser';
import type { Delivery } from '../fanout/fanout.types.js';
import * as ws from 'ws';
import {
  batchFrames,
  SocketEventPacket,
  socketEventPacket,
  SseBytesFrame,
  sseDeliveryFrame,
} from './delivery-encoding.js';

const event = { specversion: '1.0', id: 'e"\n\u2028', data: { nested: [1, 'two', null], text: 'line\r\nbreak' } };
const delivery: Delivery = { cursor: 'abc_7', seq: 7, subject: 'events.acme.x', event, json: JSON.stringify(event) };
const { json: _json, ...wire } = delivery;
// ws exports its Receiver (the ESM wrapper does); @types/ws does not declare it.
const { Receiver } = ws as unknown as {
  Receiver: new (o: object) => {
    on(e: string, cb: (data: Buffer, isBinary: boolean) => void): void;
    write(b: Buffer): void;
  };
};

describe('socketEventPacket', () => {
  it('is exactly what socket.io-parser encodes for emit("event", {subscription, ...delivery})', () => {
    const [expected] = new Encoder().encode({
      type: PacketType.EVENT,
      nsp: '/',
      data: ['event', { subscription: 's"1', ...wire }],
    });
    expect(socketEventPacket('s"1', delivery).packet).toBe(expected);
  });

  it('decodes on the client side to the same message', () => {
    const decoder = new Decoder();
    let packet: Packet | undefined;
    decoder.on('decoded', (p: Packet) => {
      packet = p;
    });
    decoder.add(socketEventPacket('s12', delivery).packet);
    expect(packet?.type).toBe(PacketType.EVENT);
    expect(packet?.data).toEqual(['event', { subscription: 's12', ...wire }]);
  });

  it('frames the engine.io message as one unmasked WebSocket text frame that a ws client reads back', async () => {
    const { frame, packet } = socketEventPacket('s1', { ...delivery, seq: 8 });
    const receiver = new Receiver({ isServer: false });
    const message = new Promise<{ text: string; isBinary: boolean }>((resolve) =>
      receiver.on('message', (data: Buffer, isBinary: boolean) => resolve({ text: data.toString(), isBinary })),
    );
    receiver.write(Buffer.concat(frame as Buffer[]));
    expect(await message).toEqual({ text: `4${packet}`, isBinary: false });
  });

  it('batches frames back to back, of every length form, exactly as a ws client reads them one by one', async () => {
    // Payload lengths (with the leading "4") around both length-form boundaries: 125/126 and 65535/65536.
    const texts = [10, 124, 125, 126, 65_534, 65_535, 70_000].map((n) => 'x'.repeat(n));
    texts.push('é€😀'.repeat(40)); // multi-byte UTF-8: lengths are bytes, not characters
    const packets = texts.map((t) => new SocketEventPacket(t));
    packets[1].shared = true; // framed once by ws's Sender and copied
    packets[5].shared = true;
    const receiver = new Receiver({ isServer: false, maxPayload: 0 });
    const got: string[] = [];
    const all = new Promise<void>((resolve) =>
      receiver.on('message', (data: Buffer, isBinary: boolean) => {
        expect(isBinary).toBe(false);
        got.push(data.toString());
        if (got.length === texts.length) resolve();
      }),
    );
    const batch = batchFrames(packets);
    // Split at an odd place: a client reads the stream in whatever chunks TCP gives it.
    receiver.write(batch.subarray(0, 70_001));
    receiver.write(batch.subarray(70_001));
    await all;
    expect(got).toEqual(texts.map((t) => `4${t}`));
    const oneByOne = Buffer.concat(packets.flatMap((p) => [...p.frame]));
    expect(batch.equals(oneByOne)).toBe(true);
  });

  it('keeps the envelope text as stored: a stored envelope with line breaks stays one SSE data value', () => {
    const pretty = { ...delivery, json: JSON.stringify(event, null, 2) };
    const frame = String(sseDeliveryFrame(pretty));
    const data = frame
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6))
      .join('\n');
    expect(JSON.parse(data)).toEqual({ ...wire, event });
  });

  it('encodes a delivery once per subscription id, whatever the number of clients', () => {
    const d = { ...delivery, seq: 9 };
    const first = [socketEventPacket('s1', d), socketEventPacket('s2', d)];
    for (let i = 0; i < 100; i++) {
      expect(socketEventPacket('s1', d)).toBe(first[0]);
      expect(socketEventPacket('s2', d)).toBe(first[1]);
    }
    expect(first[0].frame).toBe(first[0].frame);
    const next = { ...d, seq: 10 };
    expect(socketEventPacket('s1', next)).not.toBe(first[0]);
    const sse = sseDeliveryFrame(d);
    for (let i = 0; i < 100; i++) expect(sseDeliveryFrame(d)).toBe(sse);
  });

  it('never serialises the envelope again: the stored text goes out as it is', () => {
    const d = { ...delivery, json: '{"stored" : "as is"}' };
    expect(socketEventPacket('s1', d).packet).toContain(',"event":{"stored" : "as is"}}]');
    expect(sseDeliveryFrame(d)).toContain(',"event":{"stored" : "as is"}}\n');
  });
});

describe('sseDeliveryFrame', () => {
  it('is one id line and one data line holding the delivery JSON', () => {
    const frame = String(sseDeliveryFrame(delivery));
    expect(frame).toBe(`id: abc_7\ndata: ${JSON.stringify(wire)}\n\n`);
    expect(frame.split('\n')).toHaveLength(4);
  });
});

describe('a catch-up page delivery (the stored bytes, never decoded)', () => {
  const enc = new TextEncoder();
  // Multi-byte UTF-8 in the envelope and the subject: lengths are bytes, not characters.
  const stored = { specversion: '1.0', id: 'é€😀', data: { text: 'a "quoted" \u2028 value' } };
  const text: Delivery = {
    cursor: 'abc_11',
    seq: 11,
    subject: 'events.acme.ü',
    event: stored,
    json: JSON.stringify(stored),
  };
  const withBytes = (d: Delivery): Delivery => ({ ...d, seq: d.seq, bytes: enc.encode(d.json) });

  it('gives SSE clients the very bytes the text delivery gives them', () => {
    const fromText = Buffer.from(String(sseDeliveryFrame(text)));
    const fromBytes = sseDeliveryFrame(withBytes(text));
    expect(fromBytes).toBeInstanceOf(SseBytesFrame);
    const frame = fromBytes as SseBytesFrame;
    expect(frame.length).toBe(fromText.length);
    expect(frame.toBuffer().equals(fromText)).toBe(true);
    // Written in place between other bytes, as a page's chunk holds it: nothing before or after is touched.
    const out = Buffer.alloc(frame.length + 4, 0x2e);
    expect(frame.writeTo(out, 2)).toBe(2 + frame.length);
    expect(out.equals(Buffer.concat([Buffer.from('..'), fromText, Buffer.from('..')]))).toBe(true);
  });

  it('writes the same bytes as the text path for every seq length and cursor, and any subject', () => {
    for (const seq of [0, 7, 10, 99, 100, 123_456, Number.MAX_SAFE_INTEGER]) {
      for (const cursor of [`abc_${seq}`, `0123456789abcdef_${seq}`, `A"b\\_${seq}`]) {
        for (const subject of ['events.a', 'events.acme.ü', 'events."q"']) {
          const d: Delivery = { ...text, seq, cursor, subject };
          const sse = sseDeliveryFrame(withBytes(d));
          const sseBytes = typeof sse === 'string' ? Buffer.from(sse) : sse.toBuffer();
          expect({ seq, cursor, subject, sse: sseBytes.toString() }).toEqual({
            seq,
            cursor,
            subject,
            sse: String(sseDeliveryFrame({ ...d })),
          });
          const a = socketEventPacket('s9', { ...d });
          const b = socketEventPacket('s9', withBytes(d));
          expect(b.packet).toBe(a.packet);
          // A page packet counts its bytes exactly (the text path counts characters).
          if (!cursor.includes('"')) expect(b.size).toBe(Buffer.byteLength(a.packet));
          expect(batchFrames([b, b]).equals(batchFrames([a, a]))).toBe(true);
        }
      }
    }
  });

  it('writes the same bytes from the cursor epoch as from the cursor, as epochs and subjects change', () => {
    // Frames built one after another and written afterwards, as a page's are: each keeps its own epoch and subject.
    const frames: { frame: SseBytesFrame; expected: string }[] = [];
    for (const epoch of ['abc', 'abd', '0123456789abcdef', 'z']) {
      for (const seq of [0, 9, 10, 123_456, Number.MAX_SAFE_INTEGER]) {
        for (const subject of ['events.a', 'events.b', 'events.acme.ü', 'events."q"', 'events.a']) {
          const d: Delivery = { ...text, seq, cursor: `${epoch}_${seq}`, subject };
          const expected = String(sseDeliveryFrame({ ...d }));
          const frame = sseDeliveryFrame({ ...withBytes(d), cursorEpoch: epoch });
          expect(frame).toBeInstanceOf(SseBytesFrame);
          frames.push({ frame: frame as SseBytesFrame, expected });
        }
      }
    }
    const out = Buffer.alloc(frames.reduce((n, f) => n + f.frame.length, 0));
    let o = 0;
    for (const { frame } of frames) o = frame.writeTo(out, o);
    expect(o).toBe(out.length);
    expect(out.toString()).toBe(frames.map((f) => f.expected).join(''));
    for (const { frame, expected } of frames) expect(frame.toBuffer().toString()).toBe(expected);
  });

  it('falls back to the text frame when the stored bytes hold a line break', () => {
    const pretty = { ...text, json: JSON.stringify(stored, null, 2) };
    expect(String(sseDeliveryFrame(withBytes(pretty)))).toBe(String(sseDeliveryFrame({ ...pretty })));
  });

  it('gives Socket.IO clients the same packet, frame and batch as the text delivery', () => {
    const a = socketEventPacket('s1', text);
    const b = socketEventPacket('s1', withBytes(text));
    expect(b.packet).toBe(a.packet);
    expect(Buffer.concat(b.frame as Buffer[]).equals(Buffer.concat(a.frame as Buffer[]))).toBe(true);
    const c = socketEventPacket('s1', withBytes({ ...text, seq: 12 }));
    const d = socketEventPacket('s1', { ...text, seq: 12 });
    expect(batchFrames([b, c]).equals(batchFrames([a, d]))).toBe(true);
  });
});
