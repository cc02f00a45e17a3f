import { describe, expect, it } from '@jest/globals';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { AckReply, ReadEvent } from './jetstream-ack-reply.js';

/** Parses with a fresh AckReply (with the 9-token form's prefix for stream EVENTS, consumer C_1, or without). */
function parseAckReply(reply: string, prefix = '') {
  const a = new AckReply(prefix);
  return a.parse(reply) ? { seq: a.seq, dseq: a.dseq, pending: a.pending, tsEnd: a.tsEnd } : null;
}

describe('AckReply', () => {
  it('reads the stream and delivery sequences and the pending count of the 9-token form', () => {
    const r = '$JS.ACK.EVENTS.C_1.1.1234.17.1796646029857844598.42';
    const info = parseAckReply(r);
    expect(info).toEqual({ seq: 1234, dseq: 17, pending: 42, tsEnd: r.lastIndexOf('.') });
    expect(parseAckReply(r, '$JS.ACK.EVENTS.C_1.')).toEqual(info);
    // Another consumer's reply is still read (the long way).
    expect(parseAckReply(r, '$JS.ACK.EVENTS.C_2.')).toEqual(info);
    expect(r.slice(r.lastIndexOf('.', info!.tsEnd - 1) + 1, info!.tsEnd)).toBe('1796646029857844598');
  });

  it('reads the 12-token form (domain, account hash, and a random token after the pending count)', () => {
    const r = '$JS.ACK.hub.ACCHASH.EVENTS.C_1.2.99.5.1796646029857844598.0.Xy7z';
    const info = parseAckReply(r);
    expect(info).toMatchObject({ seq: 99, dseq: 5, pending: 0 });
    expect(r.slice(r.lastIndexOf('.', info!.tsEnd - 1) + 1, info!.tsEnd)).toBe('1796646029857844598');
  });

  it('answers null for anything else', () => {
    for (const r of [
      '',
      '_INBOX.abc',
      '$JS.ACK.EVENTS.C_1.1.1234.17.1796646029857844598', // a token short
      '$JS.ACK.EVENTS.C_1.1.x.17.1796646029857844598.42', // not a number
      '$JS.ACK.a.b.EVENTS.C_1.1.1234.17.1796646029857844598.42', // 11 tokens
      '$JS.ACK.EVENTS.C_1.1.1234.17.1796646029857844598.', // no pending count
      '$JS.ACK.EVENTS.C_1.1.1234..1796646029857844598.42', // no delivery sequence
      '$JS.ACK.EVENTS.C_1.1.99999999999999999.17.1796646029857844598.42', // past 2^53
    ]) {
      expect({ r, info: parseAckReply(r) }).toEqual({ r, info: null });
      expect({ r, info: parseAckReply(r, '$JS.ACK.EVENTS.C_1.') }).toEqual({ r, info: null });
    }
  });
});

describe('AckReply against the NATS client', () => {
  it('reads what the client library reads from the same reply subjects', async () => {
    // The library's own parser (what consume() gives each message as `info`); its module is not exported by
    // name, so it is loaded by file.
    const file = join(dirname(fileURLToPath(import.meta.resolve('@nats-io/jetstream'))), 'jsmsg.js');
    const { parseInfo } = (await import(pathToFileURL(file).href)) as {
      parseInfo(s: string): {
        streamSequence: number;
        deliverySequence: number;
        pending: number;
        timestampNanos: number;
      };
    };
    const replies = [
      '$JS.ACK.EVENTS.C_1.1.1234.17.1796646029857844598.42',
      '$JS.ACK.EVENTS.C_1.3.1.1.1796646029857844598.0',
      '$JS.ACK.EVENTS.hs_r_Xy.1.9007199254740991.65536.1796646029857844598.100000',
      '$JS.ACK.hub.ACCHASH.EVENTS.C_1.2.99.5.1796646029857844598.0.Xy7z',
      '$JS.ACK.hub.ACCHASH.EVENTS.C_1.2.1000000.1000000.1796646029857844598.123.token',
    ];
    for (const r of replies) {
      const lib = parseInfo(r);
      const ours = parseAckReply(r);
      expect({ r, ours }).toEqual({
        r,
        ours: expect.objectContaining({ seq: lib.streamSequence, dseq: lib.deliverySequence, pending: lib.pending }),
      });
      const ts = r.slice(r.lastIndexOf('.', ours!.tsEnd - 1) + 1, ours!.tsEnd);
      expect(Number(ts)).toBe(lib.timestampNanos);
    }
  });
});

describe('ReadEvent', () => {
  it("works out time from the reply's timestamp token, in ms", () => {
    const r = '$JS.ACK.EVENTS.C_1.1.1234.17.1796646029857844598.42';
    const a = new AckReply();
    expect(a.parse(r)).toBe(true);
    const e = new ReadEvent(a.seq, 'hs.events.x', new Uint8Array([1]), r, a.tsEnd);
    expect({ seq: e.seq, subject: e.subject, time: e.time }).toEqual({
      seq: 1234,
      subject: 'hs.events.x',
      time: 1796646029857,
    });
  });
});
