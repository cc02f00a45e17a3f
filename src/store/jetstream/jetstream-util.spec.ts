import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import type { StreamInfo } from '@nats-io/jetstream';
import { epochOf, idempotencyKey, streamStateOf, withTimeout } from './jetstream-util.js';

const info = (state: Partial<StreamInfo['state']>, created = '2026-11-26T17:00:00.123456789Z') =>
  ({ config: { name: 'EVENTS' }, created, state }) as unknown as StreamInfo;

describe('epochOf', () => {
  it('is 12 characters of [0-9a-z], stable, and differs per incarnation', () => {
    const a = epochOf('EVENTS', '2026-11-26T17:00:00.123456789Z');
    expect(a).toMatch(/^[0-9a-z]{12}$/);
    expect(epochOf('EVENTS', '2026-11-26T17:00:00.123456789Z')).toBe(a);
    expect(epochOf('EVENTS', '2026-11-26T17:00:00.123456790Z')).not.toBe(a);
    expect(epochOf('OTHER', '2026-11-26T17:00:00.123456789Z')).not.toBe(a);
  });
});

describe('idempotencyKey', () => {
  it('maps any msgId to a valid KV key', () => {
    for (const id of ['github:1:abc', 'a b/c*>', 'ünïcode', '']) expect(idempotencyKey(id)).toMatch(/^[0-9a-f]{64}$/);
    expect(idempotencyKey('x')).not.toBe(idempotencyKey('y'));
  });
});

describe('streamStateOf', () => {
  it('reports a never-used stream (2.9: first_seq 0, last_seq 0) as 1/0', () => {
    expect(streamStateOf(info({ messages: 0, first_seq: 0, last_seq: 0 }))).toMatchObject({ firstSeq: 1, lastSeq: 0 });
  });
  it('reports a purged stream as lastSeq + 1', () => {
    expect(streamStateOf(info({ messages: 0, first_seq: 11, last_seq: 10 }))).toMatchObject({
      firstSeq: 11,
      lastSeq: 10,
    });
  });
  it('reports stored messages as they are', () => {
    expect(streamStateOf(info({ messages: 3, first_seq: 5, last_seq: 7 }))).toMatchObject({ firstSeq: 5, lastSeq: 7 });
  });
});

describe('withTimeout', () => {
  it('an answer that reached the socket while the event loop was busy past the deadline wins', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    const [peer] = (await accepted) as [Socket];
    try {
      const answer = once(client, 'data').then(([chunk]) => String(chunk));
      // In the check phase: the loop goes on to the timers phase (the deadline has passed by then) before it
      // polls the socket that holds the answer.
      const result = await new Promise<Promise<string>>((resolve) =>
        setImmediate(() => {
          const call = withTimeout(answer, 20, 'the call');
          peer.write('the answer');
          const until = Date.now() + 100;
          while (Date.now() < until) {
            // the event loop is busy
          }
          resolve(call);
        }),
      );
      expect(result).toBe('the answer');
    } finally {
      client.destroy();
      peer.destroy();
      server.close();
    }
  });
});
