import { describe, expect, it } from '@jest/globals';
import type { Msg } from '@nats-io/transport-node';
import { JetStreamReader, type ReaderHandles } from './jetstream-reader.js';
import type { StoreLogger } from './jetstream-util.js';

/** A connection and manager that record pulls and let the test deliver messages to the reader's inbox. */
function fakeHandles(pending: number) {
  const pulls: { subject: string; batch: number; reply: string }[] = [];
  let deliver: ((err: Error | null, msg: Msg) => void) | undefined;
  let inbox = '';
  const deleted: string[] = [];
  const nc = {
    subscribe(subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }) {
      inbox = subject;
      deliver = opts.callback;
      return { getSubject: () => subject, unsubscribe: () => (deliver = undefined) };
    },
    publish(subject: string, data: string, opts: { reply: string }) {
      pulls.push({ subject, batch: (JSON.parse(data) as { batch: number }).batch, reply: opts.reply });
    },
  };
  const jsm = {
    consumers: {
      add: () => Promise.resolve({ name: 'C_1', num_pending: pending }),
      info: () => Promise.resolve({ num_pending: pending }),
      delete: (_: string, name: string) => Promise.resolve(void deleted.push(name)),
    },
  };
  const handles = { nc, js: { apiPrefix: '$JS.API' }, jsm } as unknown as ReaderHandles;
  /** Delivers stream seq `seq` as delivery `dseq` with `left` pending after it. */
  const send = (seq: number, dseq: number, left: number) =>
    deliver?.(null, {
      subject: 'events.a',
      reply: `$JS.ACK.EVENTS.C_1.1.${seq}.${dseq}.1796646029857844598.${left}`,
      data: new TextEncoder().encode(`{"n":${seq}}`),
    } as unknown as Msg);
  return { handles, pulls, send, deleted, inbox: () => inbox };
}

const logger = { warn: () => undefined } as unknown as StoreLogger;

/** A read of `events.>` on stream EVENTS from seq 1 to `untilSeq`, over the fake handles. */
function openFrom1(f: ReturnType<typeof fakeHandles>, untilSeq: number) {
  return JetStreamReader.open(f.handles, 'EVENTS', 'events.>', { fromSeq: 1, filter: 'events.>', untilSeq }, logger);
}

describe('JetStreamReader', () => {
  it('pulls at most READ_AHEAD ahead of what the caller took, and pulls again as pages are taken', async () => {
    const f = fakeHandles(10_000);
    const reader = await openFrom1(f, 10_000);
    expect(f.pulls).toEqual([{ subject: '$JS.API.CONSUMER.MSG.NEXT.EVENTS.C_1', batch: 4096, reply: f.inbox() }]);
    for (let s = 1; s <= 4096; s++) f.send(s, s, 10_000 - s);
    expect(f.pulls).toHaveLength(1); // all of it queued, nothing taken yet
    expect((await reader.next(512)).map((e) => e.seq)).toEqual(Array.from({ length: 512 }, (_, i) => i + 1));
    expect(f.pulls).toHaveLength(1); // 512 free: less than a batch
    await reader.next(512);
    expect(f.pulls.map((p) => p.batch)).toEqual([4096, 1024]);
    await reader.close();
    expect(f.deleted).toEqual(['C_1']);
  });

  it('ends at untilSeq or when nothing is pending, and hands out what it queued', async () => {
    const f = fakeHandles(3);
    const reader = await openFrom1(f, 100);
    f.send(1, 1, 2);
    f.send(2, 2, 1);
    f.send(3, 3, 0);
    const page = await reader.next(10);
    expect(page.map((e) => [e.seq, e.subject, Buffer.from(e.data).toString()])).toEqual([
      [1, 'events.a', '{"n":1}'],
      [2, 'events.a', '{"n":2}'],
      [3, 'events.a', '{"n":3}'],
    ]);
    expect(page[0].time).toBe(1796646029857);
    expect(await reader.next(10)).toEqual([]);
    expect(f.deleted).toEqual(['C_1']);
  });

  it('fails after what it queued when a message was lost on the way (a jump in the delivery sequence)', async () => {
    const f = fakeHandles(10);
    const reader = await openFrom1(f, 100);
    f.send(1, 1, 9);
    f.send(2, 2, 8);
    f.send(4, 4, 6); // delivery 3 never came
    f.send(5, 5, 5);
    expect((await reader.next(2)).map((e) => e.seq)).toEqual([1, 2]);
    await expect(reader.next(2)).rejects.toThrow(/lost on the way/);
    await reader.close();
  });
});
