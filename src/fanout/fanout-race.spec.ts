/**
 * Randomised hand-off test (seeded, reproducible): random interleavings of appends, subscribes at random start
 * points, deferred begin(), slow / failing reader pages, sinks that stop and resume reading, purges, closes.
 * Each subscription must receive exactly the matching stored seqs after its start, strictly increasing, once;
 * a seq may be missing only inside a gap notice's window, and only if it was really purged.
 */
import { describe, expect, it } from '@jest/globals';
import { decodeCursor, encodeCursor } from '../events/cursor.js';
import { matchesSubject } from '../events/pattern.js';
import { FanoutHub, type Subscription } from './fanout-hub.js';
import { FakeSink, ticks, waitFor } from '../../test/support/fake-sink.js';
import { MemoryEventStore } from '../../test/support/memory-event-store.js';

const RUNS = Number(process.env.RACE_RUNS ?? 250);
const FIRST = Number(process.env.RACE_FIRST ?? 1);
const STEPS = 70;
const SUBJECTS = ['events.a.x', 'events.a.y', 'events.b.x', 'events.b.y', 'events.c.z'];
const PATTERNS = ['events.>', 'events.a.>', 'events.*.x', 'events.b.y', 'events.a.x', 'events.c.*'];

/** mulberry32: small, fast, seedable. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Tracked {
  tag: string;
  sink: FakeSink;
  patterns: string[];
  /** The position the client asked to start after (cursor), else the ack's startCursor. */
  mark: number;
  sub: Subscription;
  begun: boolean;
  closed: boolean;
  recordsAtClose: number;
}

/** What the runs exercised, summed over all runs (asserted at the end so the test cannot go vacuous). */
const seen = { gaps: 0, slowConsumers: 0, replayed: 0, readers: 0, injectedFailures: 0, closedMidRead: 0, purges: 0 };

async function runOnce(seed: number): Promise<void> {
  const rnd = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];

  const store = new MemoryEventStore();
  /** Every event ever stored (purges do not forget them here). */
  const history = new Map<number, string>();
  let purgedThrough = 0;
  const add = (n: number) => {
    for (let i = 0; i < n; i++) {
      const subject = pick(SUBJECTS);
      history.set(store.add(subject), subject);
    }
  };
  add(int(0, 25));

  const hub = new FanoutHub(
    store,
    {
      ringEvents: int(0, 12),
      clientBufferEvents: int(1, 6),
      concurrentReplays: int(1, 3),
      replaysPerConnection: int(1, 3),
      replaySliceSeqs: int(1, 8),
      clientBufferBytes: int(100, 1000),
      replayPageSize: int(1, 5),
      epochCheckMs: 0,
      retryDelayMs: 1,
    },
    {
      gap: () => seen.gaps++,
      slowConsumer: () => seen.slowConsumers++,
      replayed: (n) => (seen.replayed += n),
    },
  );
  await hub.start();

  store.beforePage = async () => {
    const r = rnd();
    if (r < 0.3) await ticks(int(1, 3));
    else if (r < 0.4) add(int(1, 3));
    else if (r < 0.45) {
      store.failReads(1);
      seen.injectedFailures++;
    }
  };

  const sinks = [new FakeSink(), new FakeSink(), new FakeSink()];
  const tracked: Tracked[] = [];
  let counter = 0;

  try {
    for (let step = 0; step < STEPS; step++) {
      const r = rnd();
      if (r < 0.32) {
        add(int(1, 4));
      } else if (r < 0.52) {
        const patterns = [...new Set([pick(PATTERNS), ...(rnd() < 0.3 ? [pick(PATTERNS)] : [])])];
        const kind = rnd();
        const req: { patterns: string[]; cursor?: string; from?: string } = { patterns };
        let asked: number | undefined;
        if (kind < 0.5) {
          asked = int(0, store.lastSeq + 2);
          req.cursor = encodeCursor({ epoch: 'e1', seq: asked });
        } else if (kind < 0.65) req.from = 'earliest';
        else if (kind < 0.75) req.from = 'latest';
        const tag = `t${++counter}`;
        const sink = pick(sinks);
        const sub = await hub.subscribe(req, sink.channel(tag));
        const startSeq = (decodeCursor(sub.startCursor) as { seq: number }).seq;
        const t: Tracked = {
          tag,
          sink,
          patterns,
          mark: asked ?? startSeq,
          sub,
          begun: false,
          closed: false,
          recordsAtClose: 0,
        };
        tracked.push(t);
        if (rnd() < 0.6) {
          sub.begin();
          t.begun = true;
        }
      } else if (r < 0.6) {
        const t = tracked.find((x) => !x.begun && !x.closed);
        if (t) {
          t.sub.begin();
          t.begun = true;
        }
      } else if (r < 0.66) {
        const open = tracked.filter((x) => !x.closed);
        if (open.length > 0) {
          const t = pick(open);
          if (hub.inspect(t.sub.id)?.readerOpen) seen.closedMidRead++;
          t.sub.close();
          t.closed = true;
          t.recordsAtClose = recordsOf(t).length;
        }
      } else if (r < 0.76) {
        const s = pick(sinks);
        if (rnd() < 0.5) s.pause();
        else s.resume();
      } else if (r < 0.79) {
        // Retention: drop a prefix of the stream (never past the last event).
        const through = int(purgedThrough, Math.max(purgedThrough, store.lastSeq - 3));
        store.purge(through);
        seen.purges++;
        purgedThrough = Math.max(purgedThrough, through);
      } else {
        await ticks(int(0, 3));
      }
    }

    // Quiesce: readers healthy, every client reading, every subscription begun; then one last live batch.
    store.beforePage = undefined;
    for (const s of sinks) s.resume();
    for (const t of tracked) if (!t.begun && !t.closed) t.sub.begin();
    const open = tracked.filter((t) => !t.closed);
    const settled = () =>
      hub.stats().head === store.lastSeq && open.every((t) => hub.inspect(t.sub.id)?.mode === 'live');
    await waitFor(settled, `seed ${seed}: all live`);
    add(5);
    await waitFor(settled, `seed ${seed}: all live after the last batch`);

    seen.readers += store.openReaderCalls;
    for (const t of tracked) verify(t, seed);
    expect(store.openReaders.size).toBe(0);
    expect(hub.subscriptionCount).toBe(open.length);
    expect(hub.stats().buffered).toBe(0);
  } finally {
    await hub.stop();
  }

  function recordsOf(t: Tracked) {
    return t.sink.records.filter((r) => r.tag === t.tag);
  }

  function verify(t: Tracked, seed: number): void {
    const where = `seed ${seed}, ${t.tag} ${JSON.stringify(t.patterns)} after ${t.mark}`;
    const matching = (seq: number) => {
      const subject = history.get(seq);
      return subject !== undefined && t.patterns.some((p) => matchesSubject(p, subject));
    };
    const records = recordsOf(t);
    if (t.closed) expect({ where, n: records.length }).toEqual({ where, n: t.recordsAtClose });
    let mark = t.mark;
    const fail = (msg: string) => {
      throw new Error(
        `${where}: ${msg}; records ${JSON.stringify(records.map((r) => (r.kind === 'event' ? r.delivery.seq : r.notice)))}`,
      );
    };
    for (const r of records) {
      if (r.kind === 'gap') {
        if (r.notice.from !== encodeCursor({ epoch: 'e1', seq: mark }))
          fail(`gap from ${r.notice.from}, expected e1_${mark}`);
        const resume = (decodeCursor(r.notice.resumeCursor) as { seq: number }).seq;
        if (resume <= mark) fail(`gap that skips nothing (${mark} → ${resume})`);
        for (let s = mark + 1; s <= resume; s++) {
          if (matching(s) && s > purgedThrough) fail(`gap skipped seq ${s}, which was never purged`);
        }
        mark = resume;
      } else {
        const seq = r.delivery.seq;
        if (seq <= mark) fail(`seq ${seq} not above ${mark} (duplicate or out of order)`);
        if (!matching(seq)) fail(`seq ${seq} does not match`);
        for (let s = mark + 1; s < seq; s++) if (matching(s)) fail(`seq ${s} missing before ${seq}`);
        if (r.delivery.cursor !== `e1_${seq}`) fail(`cursor ${r.delivery.cursor} for seq ${seq}`);
        mark = seq;
      }
    }
    if (!t.closed) {
      for (let s = mark + 1; s <= store.lastSeq; s++) if (matching(s)) fail(`seq ${s} never delivered`);
      expect(t.sub.cursor).toBe(encodeCursor({ epoch: 'e1', seq: mark }));
    }
  }
}

describe('FanoutHub: randomised hand-off (seeded)', () => {
  it(`${RUNS} random runs: every subscription gets exactly the matching seqs after its start, once, in order`, async () => {
    for (let seed = FIRST; seed < FIRST + RUNS; seed++) await runOnce(seed);
    if (process.env.RACE_STATS) console.log(seen);
    // Every path the test is meant to race was taken, many times.
    for (const [path, count] of Object.entries(seen))
      expect({ path, count: count >= RUNS / 10 }).toEqual({ path, count: true });
  }, 120_000);
});
