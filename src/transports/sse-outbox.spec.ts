import { describe, expect, it, jest } from '@jest/globals';
import type { ServerResponse } from 'node:http';
import type { Delivery } from '../fanout/fanout.types.js';
import { SseOutbox } from './sse-outbox.js';
import { CLOSING_GRACE_MS } from './turn-outbox.js';

/** The part of a ServerResponse the outbox uses; write callbacks run when the test says the socket flushed. */
class FakeResponse {
  writableEnded = false;
  destroyed = false;
  readonly writes: string[] = [];
  /** Whether each write was a Buffer (a page holding stored bytes) rather than text. */
  readonly binary: boolean[] = [];
  private readonly callbacks: (() => void)[] = [];
  write(chunk: string | Buffer, cb: () => void): boolean {
    this.writes.push(String(chunk));
    this.binary.push(Buffer.isBuffer(chunk));
    this.callbacks.push(cb);
    return true;
  }
  flushSocket(): void {
    for (const cb of this.callbacks.splice(0)) cb();
  }
  destroy(): void {
    this.destroyed = true;
  }
}

const delivery = (seq: number): Delivery => ({
  cursor: `e_${seq}`,
  seq,
  subject: 'events.a',
  event: { n: seq },
  json: `{"n":${seq}}`,
});
const turn = () => new Promise((resolve) => setImmediate(resolve));

function outbox(): [SseOutbox, FakeResponse] {
  const res = new FakeResponse();
  return [new SseOutbox(res as unknown as ServerResponse), res];
}

describe('SseOutbox', () => {
  it('writes what one turn sent as one write, in order, at the end of the turn', async () => {
    const [out, res] = outbox();
    out.send(delivery(1));
    out.gap({ from: 'e_1', resumeCursor: 'e_5' });
    out.send(delivery(6));
    expect(res.writes).toEqual([]);
    expect(out.backlog()).toBe(3);
    await turn();
    expect(res.writes).toHaveLength(1);
    const ids = [...res.writes[0].matchAll(/^(id|event): (.*)$/gm)].map((m) => m[2]);
    expect(ids).toEqual(['e_1', 'gap', 'e_6']);
    expect(out.backlog()).toBe(3);
    res.flushSocket();
    expect(out.backlog()).toBe(0);
  });

  it('writes a corked page when it is uncorked, without waiting for the turn to end', () => {
    const [out, res] = outbox();
    out.cork();
    out.cork();
    for (let i = 1; i <= 5; i++) out.send(delivery(i));
    out.uncork();
    expect(res.writes).toEqual([]);
    out.uncork();
    expect(res.writes).toHaveLength(1);
    expect(res.writes[0].match(/^id: /gm)).toHaveLength(5);
  });

  it("writes a page of stored bytes as one buffer holding the text deliveries' frames, notices in place", async () => {
    const withBytes = (seq: number): Delivery => ({
      ...delivery(seq),
      bytes: new TextEncoder().encode(`{"n":${seq}}`),
    });
    // The frames the same deliveries get as text, and the notice between them.
    const [plain, plainRes] = outbox();
    plain.cork();
    plain.send(delivery(1));
    plain.gap({ from: 'e_1', resumeCursor: 'e_5' });
    for (let i = 6; i <= 8; i++) plain.send(delivery(i));
    plain.uncork();

    const [out, res] = outbox();
    out.cork();
    out.send(withBytes(1));
    out.gap({ from: 'e_1', resumeCursor: 'e_5' });
    for (let i = 6; i <= 8; i++) out.send(withBytes(i));
    expect(out.backlogBytes()).toBe(Buffer.byteLength(plainRes.writes[0]));
    out.uncork();
    expect(res.binary).toEqual([true]);
    expect(res.writes).toEqual(plainRes.writes);
    expect(out.backlogBytes()).toBe(Buffer.byteLength(res.writes[0]));
    res.flushSocket();
    expect(out.backlogBytes()).toBe(0);

    // One page delivery alone is a write of its own bytes too.
    out.send(withBytes(9));
    await turn();
    expect(res.binary).toEqual([true, true]);
    expect(res.writes[1]).toBe(`id: e_9\ndata: {"cursor":"e_9","seq":9,"subject":"events.a","event":{"n":9}}\n\n`);
  });

  it('calls onceDrained waiters only once every written frame has flushed', async () => {
    const [out, res] = outbox();
    let drained = 0;
    out.send(delivery(1));
    out.onceDrained(() => drained++);
    await turn();
    out.send(delivery(2));
    await turn();
    expect(res.writes).toHaveLength(2);
    expect(drained).toBe(0);
    res.flushSocket();
    expect(drained).toBe(1);
    out.onceDrained(() => drained++);
    await turn();
    expect(drained).toBe(2);
  });

  it('counts the bytes it holds, queued and written but not flushed, until the socket takes them', async () => {
    const [out, res] = outbox();
    out.send(delivery(1));
    out.send(delivery(2));
    const queued = out.backlogBytes();
    expect(queued).toBeGreaterThan(2 * delivery(1).json.length);
    await turn();
    expect(out.backlogBytes()).toBe(res.writes[0].length);
    expect(out.backlogBytes()).toBe(queued);
    res.flushSocket();
    expect(out.backlogBytes()).toBe(0);
  });

  it('closes a slow consumer once through its handler, and cuts the response if it is still open after a grace', () => {
    jest.useFakeTimers();
    try {
      const [out, res] = outbox();
      let closes = 0;
      out.onSlowConsumer(() => closes++);
      out.slowConsumer();
      out.slowConsumer();
      expect(closes).toBe(1);
      expect(res.destroyed).toBe(false);
      jest.advanceTimersByTime(CLOSING_GRACE_MS);
      expect(res.destroyed).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });

  it('drops frames once the response has ended', async () => {
    const [out, res] = outbox();
    res.writableEnded = true;
    out.send(delivery(1));
    await turn();
    expect(res.writes).toEqual([]);
    expect(out.backlog()).toBe(0);
  });
});
