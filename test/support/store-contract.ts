/**
 * The event-store port contract, run against every adapter (JetStream, embedded). It uses the port only,
 * so what passes here is what the rest of Hookstream may rely on.
 *
 * Why it is one long file: it is one job, the whole contract of one port. Its sections (append, state,
 * openReader, seqAtTime, tail, stop) share the one setup and teardown per test and the same small helpers, and
 * a reader sees the promises in one place; split into files, each adapter's suite would have to call several
 * contract functions and could silently leave one out.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { EventReader, EventStore, StoredEvent, Tail } from '../../src/store/event-store.port.js';
import { waitFor } from '../lib/wait.mjs';

export interface ContractSetup {
  /** A started store on a fresh, empty stream or log. */
  store: EventStore;
  /** Stops the store(s) and removes what setup created. */
  cleanup: () => Promise<void>;
  /** The configured `stream.subjectPrefix`; default `events`. */
  subjectPrefix?: string;
  /**
   * Stops `store` and returns a new started instance on the same stream/log (a process restart).
   * Needed when `options.reopen` is set. cleanup() must also stop the reopened instance.
   */
  reopen?: () => Promise<EventStore>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function readAll(reader: EventReader, pageSize = 100): Promise<{ events: StoredEvent[]; pages: number[] }> {
  const events: StoredEvent[] = [];
  const pages: number[] = [];
  for (;;) {
    const page = await reader.next(pageSize);
    pages.push(page.length);
    if (page.length === 0) break;
    events.push(...page);
    if (pages.length > 10_000) throw new Error('reader never completed');
  }
  return { events, pages };
}

/** Matching events from fromSeq, up to and including the first with seq >= untilSeq (the most a reader may return). */
function expectedRead(all: StoredEvent[], match: (s: string) => boolean, fromSeq: number, untilSeq: number): number[] {
  const out: number[] = [];
  if (fromSeq > untilSeq) return out;
  for (const e of all) {
    if (e.seq < fromSeq || !match(e.subject)) continue;
    out.push(e.seq);
    if (e.seq >= untilSeq) break;
  }
  return out;
}

export interface ContractOptions {
  /** The adapter's setup returns reopen(): run the restart case. */
  reopen?: boolean;
}

export function describeEventStoreContract(
  name: string,
  setup: () => Promise<ContractSetup>,
  options: ContractOptions = {},
): void {
  describe(`EventStore contract: ${name}`, () => {
    let ctx: ContractSetup;
    let store: EventStore;
    let p: string;
    const subj = (rest: string) => `${p}.${rest}`;
    const append = (rest: string, msgId: string, body = msgId) =>
      store.append({ subject: subj(rest), msgId, data: enc.encode(body) });

    /** Appends a fixed mix of subjects; returns every stored event as read back. */
    async function seedMix(): Promise<StoredEvent[]> {
      const subjects = ['a.created', 'b.created', 'a.updated', 'a.x.y', 'b.deleted', 'a.created', 'c.created', 'a.x.z'];
      for (const [i, s] of subjects.entries()) await append(s, `mix-${i}`);
      const reader = await store.openReader({ fromSeq: 1, filter: subj('>'), untilSeq: Number.MAX_SAFE_INTEGER });
      const { events } = await readAll(reader);
      await reader.close();
      return events;
    }

    beforeEach(async () => {
      ctx = await setup();
      store = ctx.store;
      p = ctx.subjectPrefix ?? 'events';
    });

    afterEach(async () => {
      await ctx?.cleanup();
    });

    it('is ready once started', async () => {
      expect(await store.isReady()).toBe(true);
      expect(typeof store.kind).toBe('string');
    });

    describe('append', () => {
      it('returns strictly increasing sequences and stores the bytes exactly', async () => {
        const bodies = ['{"n":1}', 'second ✓', '\u0000binary\u00ff'];
        const results = [];
        for (const [i, b] of bodies.entries()) results.push(await append('src.type', `inc-${i}`, b));
        expect(results.map((r) => r.duplicate)).toEqual([false, false, false]);
        expect(results[0].seq).toBeGreaterThanOrEqual(1);
        expect(results[1].seq).toBe(results[0].seq + 1);
        expect(results[2].seq).toBe(results[1].seq + 1);

        const reader = await store.openReader({ fromSeq: 1, filter: subj('>'), untilSeq: results[2].seq });
        const { events } = await readAll(reader);
        await reader.close();
        expect(events.map((e) => e.seq)).toEqual(results.map((r) => r.seq));
        expect(events.map((e) => dec.decode(e.data))).toEqual(bodies);
        expect(events.every((e) => e.subject === subj('src.type'))).toBe(true);
      });

      it('answers a repeated msgId as a duplicate with the original seq and stores nothing', async () => {
        const first = await append('src.t', 'dup-1', 'original');
        await append('src.t', 'other-1');
        const again = await append('src.t', 'dup-1', 'a retry with other bytes');
        expect(again).toEqual({ seq: first.seq, duplicate: true });

        const st = await store.state();
        expect(st.lastSeq).toBe(first.seq + 1);
        const reader = await store.openReader({ fromSeq: 1, filter: subj('>'), untilSeq: st.lastSeq });
        const { events } = await readAll(reader);
        await reader.close();
        expect(events.map((e) => dec.decode(e.data))).toEqual(['original', 'other-1']);
      });

      it('stores concurrent appends once each, with distinct seqs', async () => {
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => append(`c.${i % 4}`, `conc-${i}`)));
        const seqs = results.map((r) => r.seq).sort((a, b) => a - b);
        expect(new Set(seqs).size).toBe(40);
        expect(seqs[39] - seqs[0]).toBe(39);
        expect((await store.state()).lastSeq).toBe(seqs[39]);
      });

      it('stores a msgId appended concurrently only once', async () => {
        const results = await Promise.all(Array.from({ length: 6 }, () => append('src.t', 'race-1')));
        expect(new Set(results.map((r) => r.seq)).size).toBe(1);
        expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
        expect((await store.state()).lastSeq).toBe(results[0].seq);
      });
    });

    describe('state', () => {
      it('reports an empty stream as firstSeq = lastSeq + 1 with lastSeq 0', async () => {
        const st = await store.state();
        expect(st.lastSeq).toBe(0);
        expect(st.firstSeq).toBe(1);
        expect(st.epoch).toMatch(/^[0-9a-z]{1,16}$/);
      });

      it('tracks firstSeq/lastSeq and keeps the epoch stable', async () => {
        const before = await store.state();
        const a = await append('s.one', 'st-1');
        const b = await append('s.two', 'st-2');
        const after = await store.state();
        expect(after).toEqual({ epoch: before.epoch, firstSeq: a.seq, lastSeq: b.seq });
        expect((await store.state()).epoch).toBe(before.epoch);
      });
    });

    describe('openReader', () => {
      it('returns exactly the matching events in order, for `>` and `*` filters', async () => {
        const all = await seedMix();
        expect(all).toHaveLength(8);
        const last = all[all.length - 1].seq;
        const cases: Array<[string, (s: string) => boolean]> = [
          [subj('a.>'), (s) => s.startsWith(subj('a.'))],
          [subj('*.created'), (s) => /^[^.]+\.created$/.test(s.slice(p.length + 1))],
          [subj('a.x.*'), (s) => s.startsWith(subj('a.x.')) && s.split('.').length === p.split('.').length + 3],
          [subj('b.deleted'), (s) => s === subj('b.deleted')],
          [subj('>'), () => true],
          ['>', () => true],
        ];
        for (const [filter, match] of cases) {
          const reader = await store.openReader({ fromSeq: 1, filter, untilSeq: last });
          const { events } = await readAll(reader);
          await reader.close();
          expect({ filter, seqs: events.map((e) => e.seq) }).toEqual({
            filter,
            seqs: expectedRead(all, match, 1, last),
          });
          for (const e of events) expect(e).toEqual(all.find((x) => x.seq === e.seq));
        }
      });

      it('starts at fromSeq and stops at untilSeq, or after the first event past it', async () => {
        const all = await seedMix();
        const matchA = (s: string) => s.startsWith(subj('a.'));
        for (const [fromSeq, untilSeq] of [
          [all[2].seq, all[5].seq],
          [all[1].seq, all[3].seq], // untilSeq on a matching event
          [all[0].seq, all[1].seq], // untilSeq on a non-matching event: the next match ends it
          [all[4].seq, all[4].seq],
        ]) {
          const reader = await store.openReader({ fromSeq, filter: subj('a.>'), untilSeq });
          const { events } = await readAll(reader);
          await reader.close();
          // Every match in [fromSeq, untilSeq] is owed; the first match past untilSeq may come too (JetStream
          // cannot stop short of it), never anything further.
          const upTo = expectedRead(all, matchA, fromSeq, untilSeq);
          const seqs = events.map((e) => e.seq);
          const owed = upTo.filter((seq) => seq <= untilSeq);
          expect({ fromSeq, untilSeq, seqs }).toEqual({
            fromSeq,
            untilSeq,
            seqs: seqs.length > owed.length ? upTo : owed,
          });
        }
      });

      it('serves pages of the requested size, then an empty page, and stays complete', async () => {
        const all = await seedMix();
        const reader = await store.openReader({ fromSeq: 1, filter: subj('>'), untilSeq: Number.MAX_SAFE_INTEGER });
        const { events, pages } = await readAll(reader, 3);
        expect(pages).toEqual([3, 3, 2, 0]);
        expect(events.map((e) => e.seq)).toEqual(all.map((e) => e.seq));
        expect(await reader.next(3)).toEqual([]);
        await reader.close();
        await reader.close(); // idempotent
      });

      it('completes at once on an empty range, an empty stream or a filter that matches nothing', async () => {
        const emptyStream = await store.openReader({ fromSeq: 1, filter: subj('>'), untilSeq: 100 });
        expect(await emptyStream.next(10)).toEqual([]);
        await emptyStream.close();

        const all = await seedMix();
        const last = all[all.length - 1].seq;
        for (const opts of [
          { fromSeq: last + 1, filter: subj('>'), untilSeq: last + 100 }, // past the end
          { fromSeq: 1, filter: subj('nope.>'), untilSeq: last }, // nothing matches
          { fromSeq: 5, filter: subj('>'), untilSeq: 4 }, // fromSeq past untilSeq
          { fromSeq: 1, filter: 'other.>', untilSeq: last }, // outside the store's subjects
        ]) {
          const reader = await store.openReader(opts);
          expect({ opts, page: await reader.next(10) }).toEqual({ opts, page: [] });
          expect(await reader.next(10)).toEqual([]);
          await reader.close();
        }
      });

      it('can be closed mid-read', async () => {
        await seedMix();
        const reader = await store.openReader({ fromSeq: 1, filter: subj('>'), untilSeq: Number.MAX_SAFE_INTEGER });
        expect(await reader.next(2)).toHaveLength(2);
        await reader.close();
        await reader.close();
      });
    });

    describe('seqAtTime', () => {
      it('finds the first event stored at or after a time', async () => {
        const first = await append('t.one', 'time-1');
        await append('t.one', 'time-2');
        // Wait for the clock to move on so the second batch has strictly later timestamps.
        const r0 = await store.openReader({ fromSeq: first.seq, filter: subj('>'), untilSeq: first.seq + 1 });
        const batch1 = (await readAll(r0)).events;
        await r0.close();
        const t1 = Math.max(...batch1.map((e) => e.time));
        await waitFor(() => Date.now() > t1 + 2, { message: 'the clock to advance' });
        await append('t.two', 'time-3');
        await append('t.two', 'time-4');
        const st = await store.state();
        const reader = await store.openReader({ fromSeq: 1, filter: subj('>'), untilSeq: st.lastSeq });
        const all = (await readAll(reader)).events;
        await reader.close();
        expect(all).toHaveLength(4);

        const firstAtOrAfter = (t: number) => all.find((e) => e.time >= t)?.seq ?? st.lastSeq + 1;
        for (const e of all) expect(await store.seqAtTime(e.time)).toBe(firstAtOrAfter(e.time));
        expect(await store.seqAtTime(t1 + 1)).toBe(all[2].seq);
        expect(await store.seqAtTime(0)).toBe(all[0].seq);
        expect(await store.seqAtTime(Date.now() + 60_000)).toBe(st.lastSeq + 1);
      });

      it('answers lastSeq + 1 on an empty stream', async () => {
        expect(await store.seqAtTime(Date.now() - 60_000)).toBe(1);
      });
    });

    describe('tail', () => {
      let tails: Tail[] = [];
      afterEach(async () => {
        await Promise.all(tails.map((t) => t.stop()));
        tails = [];
      });
      const startTail = async (fromSeq: number, into: StoredEvent[]) => {
        const t = await store.tail(fromSeq, (e) => into.push(e));
        tails.push(t);
        return t;
      };

      it('delivers from fromSeq, including events stored before it started, then new ones, in order', async () => {
        const pre = [];
        for (let i = 0; i < 5; i++) pre.push(await append(`tail.${i % 2}`, `pre-${i}`));
        const got: StoredEvent[] = [];
        await startTail(pre[2].seq, got);
        const post = [];
        for (let i = 0; i < 5; i++) post.push(await append(`tail.${i % 3}`, `post-${i}`));
        const want = [...pre.slice(2), ...post].map((r) => r.seq);
        await waitFor(() => got.length >= want.length, { message: 'tail deliveries' });
        expect(got.map((e) => e.seq)).toEqual(want);
        expect(dec.decode(got[0].data)).toBe('pre-2');
        expect(got[0].subject).toBe(subj('tail.0'));
        expect(got.every((e) => Number.isInteger(e.time) && e.time > 0)).toBe(true);
      });

      it('from lastSeq + 1 delivers only new events; stop() ends deliveries and is idempotent', async () => {
        await append('tail.x', 'old-1');
        const st = await store.state();
        const got: StoredEvent[] = [];
        const tail = await startTail(st.lastSeq + 1, got);
        const a = await append('tail.x', 'new-1');
        await waitFor(() => got.length >= 1, { message: 'first tail delivery' });
        expect(got.map((e) => e.seq)).toEqual([a.seq]);

        await tail.stop();
        await tail.stop();
        const b = await append('tail.x', 'new-2');
        // A second tail seeing the event proves it was delivered by the store; the stopped one must not.
        const witness: StoredEvent[] = [];
        await startTail(b.seq, witness);
        await waitFor(() => witness.length >= 1, { message: 'witness tail delivery' });
        expect(got.map((e) => e.seq)).toEqual([a.seq]);
      });

      it('keeps delivering when the handler throws', async () => {
        const got: number[] = [];
        const t = await store.tail(1, (e) => {
          got.push(e.seq);
          if (got.length === 1) throw new Error('handler bug');
        });
        tails.push(t);
        const a = await append('tail.y', 'h-1');
        const b = await append('tail.y', 'h-2');
        await waitFor(() => got.length >= 2, { message: 'deliveries after a throwing handler' });
        expect(got).toEqual([a.seq, b.seq]);
      });
    });

    if (options.reopen) {
      it('keeps events, epoch and idempotency across a store restart', async () => {
        if (!ctx.reopen) throw new Error('setup() must return reopen() when options.reopen is set');
        const a = await append('r.one', 'restart-1');
        const before = await store.state();
        store = await ctx.reopen();
        expect(await store.isReady()).toBe(true);
        expect(await store.state()).toEqual(before);
        expect(await append('r.one', 'restart-1')).toEqual({ seq: a.seq, duplicate: true });
        expect(await append('r.one', 'restart-2')).toEqual({ seq: a.seq + 1, duplicate: false });
      });
    }

    it('stop() is idempotent', async () => {
      await store.stop();
      await store.stop();
    });
  });
}
