/**
 * The delivery-queue port contract (src/store/delivery-queue.port.ts), run against both stores: what the outbound
 * delivery worker relies on, through the port only.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { DeliveryItem, DeliveryQueue, DeliveryQueues } from '../../src/store/delivery-queue.port.js';
import type { EventStore } from '../../src/store/event-store.port.js';

export interface QueueContractSetup {
  /** A started store on a fresh, empty stream or log, with delivery queues. */
  store: EventStore;
  /** `stream.subjectPrefix`. */
  subjectPrefix: string;
  /** Stops the store and returns a new started instance on the same stream/log (a restart). */
  reopen: () => Promise<EventStore>;
  cleanup: () => Promise<void>;
}

const enc = new TextEncoder();

/** Fetches until `n` items came back or the deadline passed (fetches may return early and empty). */
async function take(q: DeliveryQueue, n: number, max = n, timeoutMs = 10_000): Promise<DeliveryItem[]> {
  const out: DeliveryItem[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n && Date.now() < deadline) out.push(...(await q.fetch(max - out.length, 1_000)));
  return out;
}

export function describeDeliveryQueueContract(name: string, setup: () => Promise<QueueContractSetup>): void {
  describe(`delivery queue contract: ${name}`, () => {
    let ctx: QueueContractSetup;
    let store: EventStore;
    let queues: DeliveryQueues;
    let subject: (s: string) => string;

    beforeEach(async () => {
      ctx = await setup();
      store = ctx.store;
      queues = store.deliveryQueues!();
      subject = (s) => `${ctx.subjectPrefix}.${s}`;
    });
    afterEach(async () => {
      await ctx.cleanup();
    });

    const append = async (s: string, i: number) =>
      (
        await store.append({
          subject: subject(s),
          msgId: `m-${s}-${i}-${Math.random()}`,
          data: enc.encode(`{"i":${i}}`),
        })
      ).seq;
    const opts = (over: object = {}) => ({
      filter: subject('>'),
      startSeq: 1,
      maxInFlight: 10,
      ackWaitMs: 30_000,
      ...over,
    });

    it('hands out matching events from the start sequence in stream order, attempt 1, and never again once acked', async () => {
      const before = await append('a.x', 0);
      const q = await queues.open('q1', opts({ filter: subject('a.>'), startSeq: before + 1 }));
      const seqs = [await append('a.x', 1), await append('b.x', 2), await append('a.y', 3)];
      const items = await take(q, 2);
      expect(items.map((i) => [i.seq, i.subject, i.attempt])).toEqual([
        [seqs[0], subject('a.x'), 1],
        [seqs[2], subject('a.y'), 1],
      ]);
      expect(JSON.parse(new TextDecoder().decode(items[0].data))).toEqual({ i: 1 });
      expect(items[0].time).toBeGreaterThan(0);
      for (const i of items) await i.ack();
      expect(await q.fetch(10, 1_000)).toEqual([]);
      const state = await q.state();
      expect(state.inFlight).toBe(0);
      expect(state.lastHandedOut).toBe(seqs[2]);
    });

    it('hands a retried event out again no sooner than its delay, with the next attempt number', async () => {
      const q = await queues.open('q2', opts());
      const seq = await append('a', 1);
      const [first] = await take(q, 1);
      const retriedAt = Date.now();
      await first.retry(2_500);
      expect(await q.fetch(10, 1_000)).toEqual([]); // still waiting out its delay
      const [again] = await take(q, 1);
      expect(Date.now() - retriedAt).toBeGreaterThanOrEqual(2_400);
      expect([again.seq, again.attempt]).toEqual([seq, 2]);
      await again.ack();
    });

    it('caps what is handed out and unsettled at maxInFlight, retries waiting included', async () => {
      const q = await queues.open('q3', opts({ maxInFlight: 2 }));
      const seqs: number[] = [];
      for (let i = 0; i < 5; i++) seqs.push(await append('a', i));
      const first = await take(q, 2, 10);
      expect(first.map((i) => i.seq)).toEqual(seqs.slice(0, 2));
      expect(await q.fetch(10, 1_000)).toEqual([]);
      await first[0].retry(60_000); // still holds its slot
      expect(await q.fetch(10, 1_000)).toEqual([]);
      await first[1].ack();
      const next = await take(q, 1, 10);
      expect(next.map((i) => i.seq)).toEqual([seqs[2]]);
      expect((await q.state()).inFlight).toBe(2);
    });

    it('with maxInFlight 1, a retried event blocks the ones after it (strict order)', async () => {
      const q = await queues.open('q4', opts({ maxInFlight: 1 }));
      const seqs = [await append('a', 1), await append('a', 2)];
      const [a1] = await take(q, 1, 5);
      expect(a1.seq).toBe(seqs[0]);
      await a1.retry(300);
      const [a2] = await take(q, 1, 5);
      expect([a2.seq, a2.attempt]).toEqual([seqs[0], 2]);
      await a2.ack();
      const [b] = await take(q, 1, 5);
      expect([b.seq, b.attempt]).toEqual([seqs[1], 1]);
      await b.ack();
    });

    it('hands an unsettled event out again after ackWait (a crashed attempt), counting it', async () => {
      const q = await queues.open('q5', opts({ ackWaitMs: 1_500 }));
      const seq = await append('a', 1);
      const [lost] = await take(q, 1);
      expect(lost.attempt).toBe(1);
      const [again] = await take(q, 1);
      expect([again.seq, again.attempt]).toEqual([seq, 2]);
      await again.ack();
    });

    it('drops an event for good', async () => {
      const q = await queues.open('q6', opts({ maxInFlight: 1 }));
      const seqs = [await append('a', 1), await append('a', 2)];
      const [a] = await take(q, 1);
      await a.drop();
      const [b] = await take(q, 1);
      expect(b.seq).toBe(seqs[1]);
      await b.ack();
      expect(await q.fetch(10, 1_000)).toEqual([]);
    });

    it('never hands one event to two fetchers of the same queue at once', async () => {
      const q1 = await queues.open('q7', opts({ maxInFlight: 20 }));
      const q2 = await queues.open('q7', opts({ maxInFlight: 20 }));
      for (let i = 0; i < 20; i++) await append('a', i);
      const got: DeliveryItem[] = [];
      const deadline = Date.now() + 10_000;
      while (got.length < 20 && Date.now() < deadline) {
        const [x, y] = await Promise.all([q1.fetch(7, 1_000), q2.fetch(7, 1_000)]);
        got.push(...x, ...y);
      }
      expect(new Set(got.map((i) => i.seq)).size).toBe(20);
      expect(got).toHaveLength(20);
    });

    it('keeps positions, retry counts and pending retries across a restart; delete forgets the queue', async () => {
      const q = await queues.open('q8', opts({ maxInFlight: 10, ackWaitMs: 1_500 }));
      const seqs: number[] = [];
      for (let i = 0; i < 4; i++) seqs.push(await append('a', i));
      const items = await take(q, 4);
      await items[0].ack();
      await items[1].ack();
      await items[2].retry(200);
      // items[3] is left unsettled, as a crash would leave it
      store = await ctx.reopen();
      queues = store.deliveryQueues!();
      const q2 = await queues.open('q8', opts({ maxInFlight: 10, ackWaitMs: 1_500 }));
      const later = await take(q2, 2, 2, 20_000);
      expect(later.map((i) => [i.seq, i.attempt]).sort((x, y) => x[0] - y[0])).toEqual([
        [seqs[2], 2],
        [seqs[3], 2],
      ]);
      for (const i of later) await i.ack();
      expect(await queues.list('q8')).toEqual(['q8']);
      await queues.delete('q8');
      await queues.delete('q8'); // no error when absent
      expect(await queues.list('q8')).toEqual([]);
    }, 40_000);

    it('reports the backlog not yet handed out', async () => {
      const q = await queues.open('q9', opts({ filter: subject('a.>'), maxInFlight: 1 }));
      await append('a.x', 1);
      await append('a.x', 2);
      await append('a.x', 3);
      const [first] = await take(q, 1);
      const s = await q.state();
      expect(s).toMatchObject({ inFlight: 1, backlog: 2 });
      await first.ack();
    });
  });
}
