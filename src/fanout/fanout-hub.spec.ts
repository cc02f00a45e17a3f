import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { matchesSubject } from '../events/pattern.js';
import { FanoutHub, type FanoutOptions, type Subscription } from './fanout-hub.js';
import { SubscribeError, type DeliverySink, type FanoutMetrics } from './fanout.types.js';
import { RingBuffer } from './ring-buffer.js';
import { FakeSink, ticks, waitFor } from '../../test/support/fake-sink.js';
import { MemoryEventStore } from '../../test/support/memory-event-store.js';

const SUBJECTS = ['events.a.x', 'events.a.y', 'events.b.x', 'events.b.y'];

interface Counters {
  delivered: number;
  replayed: number;
  gap: number;
  slowConsumer: number;
  live: number;
}

const hubs: FanoutHub[] = [];

afterEach(async () => {
  for (const h of hubs.splice(0)) await h.stop();
});

async function setup(
  opts: Partial<FanoutOptions> = {},
  prepare?: (store: MemoryEventStore) => void,
): Promise<{ store: MemoryEventStore; hub: FanoutHub; counters: Counters }> {
  const store = new MemoryEventStore();
  prepare?.(store);
  const counters: Counters = { delivered: 0, replayed: 0, gap: 0, slowConsumer: 0, live: 0 };
  const metrics: FanoutMetrics = {
    delivered: (n) => (counters.delivered += n),
    replayed: (n) => (counters.replayed += n),
    gap: () => counters.gap++,
    slowConsumer: () => counters.slowConsumer++,
    liveEvent: () => counters.live++,
  };
  const hub = new FanoutHub(
    store,
    {
      ringEvents: 100,
      clientBufferEvents: 50,
      concurrentReplays: 2,
      replayPageSize: 10,
      epochCheckMs: 0,
      retryDelayMs: 2,
      ...opts,
    },
    metrics,
  );
  hubs.push(hub);
  await hub.start();
  store.resetCounters();
  return { store, hub, counters };
}

/** Adds n events cycling through SUBJECTS; returns their seqs. */
function addMany(store: MemoryEventStore, n: number, subjects = SUBJECTS): number[] {
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) seqs.push(store.add(subjects[(store.lastSeq + i) % subjects.length], { i }));
  return seqs;
}

/** Stored seqs after `after` matching any pattern. */
function expected(store: MemoryEventStore, patterns: string[], after: number): number[] {
  return store
    .stored()
    .filter((e) => e.seq > after && patterns.some((p) => matchesSubject(p, e.subject)))
    .map((e) => e.seq);
}

async function open(
  hub: FanoutHub,
  req: { patterns: string[]; cursor?: string; from?: string },
  sink: DeliverySink = new FakeSink(),
): Promise<{ sub: Subscription; sink: FakeSink }> {
  const sub = await hub.subscribe(req, sink);
  sub.begin();
  return { sub, sink: sink as FakeSink };
}

function isLiveAndCaughtUp(hub: FanoutHub, store: MemoryEventStore, sub: Subscription): boolean {
  return hub.inspect(sub.id)?.mode === 'live' && hub.stats().head === store.lastSeq;
}

describe('FanoutHub: start positions', () => {
  it('with neither cursor nor from delivers new matching events only, then live', async () => {
    const { store, hub } = await setup();
    addMany(store, 12);
    const { sub, sink } = await open(hub, { patterns: ['events.a.>'] });
    expect(sub.startCursor).toBe('e1_12');
    expect(sink.records).toEqual([]);
    addMany(store, 8);
    expect(sink.seqs()).toEqual(expected(store, ['events.a.>'], 12));
    const first = sink.deliveries[0];
    expect({
      cursor: first.cursor,
      seq: first.seq,
      subject: first.subject,
      event: first.event,
      json: first.json,
    }).toEqual({
      cursor: `e1_${first.seq}`,
      seq: first.seq,
      subject: store.stored()[first.seq - 1].subject,
      event: {
        specversion: '1.0',
        id: `m${first.seq}`,
        source: '/test',
        type: first.subject,
        data: expect.any(Object),
      },
      json: new TextDecoder().decode(store.stored()[first.seq - 1].data),
    });
    expect(JSON.parse(first.json)).toEqual(first.event);
    expect(sub.cursor).toBe(`e1_${sink.seqs().at(-1)}`);
  });

  it("from 'latest' is the same as no start point", async () => {
    const { store, hub } = await setup();
    addMany(store, 5);
    const { sub, sink } = await open(hub, { patterns: ['events.>'], from: 'latest' });
    expect(sub.startCursor).toBe('e1_5');
    store.add('events.b.x');
    expect(sink.seqs()).toEqual([6]);
  });

  it("from 'earliest' delivers everything still stored, without a gap notice", async () => {
    const { store, hub } = await setup({ ringEvents: 4 }, (s) => {
      addMany(s, 30);
      s.purge(7);
    });
    const { sub, sink } = await open(hub, { patterns: ['events.b.>'], from: 'earliest' });
    expect(sub.startCursor).toBe('e1_7');
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    addMany(store, 6);
    expect(sink.gaps).toEqual([]);
    expect(sink.seqs()).toEqual(expected(store, ['events.b.>'], 7));
  });

  it('resumes from a cursor: exactly the later matching events, then live (store path)', async () => {
    const { store, hub } = await setup({ ringEvents: 5 }, (s) => addMany(s, 40));
    const { sub, sink } = await open(hub, { patterns: ['events.a.x', 'events.b.y'], cursor: 'e1_13' });
    expect(sub.startCursor).toBe('e1_13');
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    addMany(store, 9);
    expect(sink.seqs()).toEqual(expected(store, ['events.a.x', 'events.b.y'], 13));
    expect(store.openReaders.size).toBe(0);
  });

  it('every start point of a small stream gives exactly the matching events after it', async () => {
    const { store, hub } = await setup({ ringEvents: 6, replayPageSize: 3 }, (s) => addMany(s, 20));
    const subs: { sub: Subscription; sink: FakeSink; after: number }[] = [];
    for (let c = 0; c <= 22; c++) {
      const { sub, sink } = await open(hub, { patterns: ['events.*.x'], cursor: `e1_${c}` });
      subs.push({ sub, sink, after: c });
    }
    await waitFor(() => subs.every((s) => isLiveAndCaughtUp(hub, store, s.sub)), 'all caught up');
    addMany(store, 7);
    for (const s of subs) expect(s.sink.seqs()).toEqual(expected(store, ['events.*.x'], s.after));
  });

  it('starts at an RFC 3339 time, inclusive', async () => {
    let clock = Date.parse('2026-11-26T10:00:00.000Z');
    const { store, hub } = await setup({ ringEvents: 2 }, (s) => {
      s.now = () => clock;
      for (let i = 0; i < 10; i++) {
        s.add('events.a.x', { i });
        clock += 1000;
      }
    });
    // Seq 4 was stored at 10:00:03.
    const { sub, sink } = await open(hub, { patterns: ['events.>'], from: '2026-11-26T10:00:03Z' });
    expect(sub.startCursor).toBe('e1_3');
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(sink.seqs()).toEqual([4, 5, 6, 7, 8, 9, 10]);
    const { sink: late } = await open(hub, { patterns: ['events.>'], from: '2030-01-01T00:00:00+02:00' });
    store.add('events.a.y');
    expect(late.seqs()).toEqual([11]);
  });

  it('accepts a cursor ahead of the stream and drops deliveries up to it', async () => {
    const { store, hub } = await setup({}, (s) => addMany(s, 5));
    const { sub, sink } = await open(hub, { patterns: ['events.>'], cursor: 'e1_9' });
    expect(sub.startCursor).toBe('e1_9');
    expect(sub.cursor).toBe('e1_9');
    addMany(store, 7);
    expect(sink.seqs()).toEqual([10, 11, 12]);
  });

  it('a cursor wins over from', async () => {
    const { hub } = await setup({}, (s) => addMany(s, 5));
    const sub = await hub.subscribe({ patterns: ['events.>'], cursor: 'e1_2', from: 'earliest' }, new FakeSink());
    expect(sub.startCursor).toBe('e1_2');
  });

  it.each([['garbage'], [''], ['e1_-1'], ['E1_3'], ['e1_3x']])(
    'refuses the cursor %j with invalid_cursor',
    async (c) => {
      const { hub } = await setup();
      const err = await hub.subscribe({ patterns: ['events.>'], cursor: c }, new FakeSink()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SubscribeError);
      expect((err as SubscribeError).code).toBe('invalid_cursor');
      expect(hub.subscriptionCount).toBe(0);
    },
  );

  it.each([['yesterday'], ['2026-11-26'], ['EARLIEST'], ['']])('refuses from=%j with invalid_cursor', async (f) => {
    const { hub } = await setup();
    const err = await hub.subscribe({ patterns: ['events.>'], from: f }, new FakeSink()).catch((e: unknown) => e);
    expect((err as SubscribeError).code).toBe('invalid_cursor');
  });

  it('answers unavailable when the store cannot be read, but serves recent cursors from memory', async () => {
    const { store, hub } = await setup({ ringEvents: 10 }, (s) => addMany(s, 3));
    addMany(store, 10);
    store.setAvailable(false);
    for (const req of [
      { from: 'earliest' },
      { cursor: 'e1_1' },
      { cursor: 'other_4' },
      { from: '2026-01-01T00:00:00Z' },
    ]) {
      const err = await hub.subscribe({ patterns: ['events.>'], ...req }, new FakeSink()).catch((e: unknown) => e);
      expect((err as SubscribeError).code).toBe('unavailable');
    }
    const { sub, sink } = await open(hub, { patterns: ['events.>'], cursor: 'e1_8' });
    expect(sink.seqs()).toEqual([9, 10, 11, 12, 13]);
    expect(hub.inspect(sub.id)?.mode).toBe('live');
  });

  it('delivers nothing before begin(), then what arrived meanwhile', async () => {
    const { store, hub } = await setup({}, (s) => addMany(s, 4));
    const sink = new FakeSink();
    const sub = await hub.subscribe({ patterns: ['events.>'], cursor: 'e1_2' }, sink);
    addMany(store, 3);
    await ticks(3);
    expect(sink.records).toEqual([]);
    sub.begin();
    sub.begin();
    expect(sink.seqs()).toEqual([3, 4, 5, 6, 7]);
  });

  it('starts even when the store is down, and goes live when it comes back', async () => {
    const { store, hub } = await setup({ retryDelayMs: 1 }, (s) => {
      addMany(s, 3);
      s.setAvailable(false);
    });
    expect(hub.isLive()).toBe(false);
    const err = await hub.subscribe({ patterns: ['events.>'] }, new FakeSink()).catch((e: unknown) => e);
    expect((err as SubscribeError).code).toBe('unavailable');
    store.setAvailable(true);
    await waitFor(() => hub.isLive(), 'live tap');
    const { sub, sink } = await open(hub, { patterns: ['events.>'] });
    expect(sub.startCursor).toBe('e1_3');
    store.add('events.a.x');
    expect(sink.seqs()).toEqual([4]);
  });
});

describe('FanoutHub: hand-off between catch-up and live', () => {
  it('events appended between pages and at the untilSeq boundary arrive exactly once, in order', async () => {
    const { store, hub } = await setup({ ringEvents: 2, replayPageSize: 4 }, (s) => addMany(s, 20));
    const pattern = ['events.a.>'];
    store.beforePage = ({ page }) => {
      // Page 0 starts right after the cursor; later pages interleave appends with the read.
      if (page === 1) addMany(store, 5);
      if (page === 2) addMany(store, 3);
    };
    const { sub, sink } = await open(hub, { patterns: pattern, cursor: 'e1_0' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    addMany(store, 4);
    expect(sink.seqs()).toEqual(expected(store, pattern, 0));
    expect(store.readerLog[0]).toEqual({ fromSeq: 1, filter: 'events.a.>', untilSeq: 20 });
  });

  it('an event stored right at the end of the read is neither lost nor doubled', async () => {
    const { store, hub } = await setup({ ringEvents: 2, replayPageSize: 5 }, (s) => addMany(s, 10, ['events.a.x']));
    let reads = 0;
    store.beforePage = () => {
      // The read of (0, 10] ends with its second page (6..10): append just before that page is served.
      if (++reads === 2) store.add('events.a.x');
    };
    const { sub, sink } = await open(hub, { patterns: ['events.a.x'], cursor: 'e1_0' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(reads).toBe(2);
    store.add('events.a.x');
    expect(sink.seqs()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('a read that runs past the head (its filter skips the boundary event) does not double anything', async () => {
    const { store, hub } = await setup({ ringEvents: 2, replayPageSize: 4 }, (s) => {
      addMany(s, 9, ['events.a.x']);
      s.add('events.b.x'); // seq 10 = the head when the read opens; not matched by the reader's filter
    });
    store.beforePage = ({ page }) => {
      if (page === 2) addMany(store, 3, ['events.a.x']); // 11, 12, 13: the read returns 11 (first ≥ untilSeq)
    };
    const { sub, sink } = await open(hub, { patterns: ['events.a.x'], cursor: 'e1_0' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    store.add('events.a.x');
    expect(store.readerLog[0].untilSeq).toBe(10);
    expect(sink.seqs()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14]);
  });

  it('a live buffer over its bound is dropped and the catch-up extended; memory stays bounded', async () => {
    const { store, hub } = await setup({ ringEvents: 3, clientBufferEvents: 4, replayPageSize: 3 }, (s) =>
      addMany(s, 30),
    );
    store.pauseReads();
    const { sub, sink } = await open(hub, { patterns: ['events.>'], cursor: 'e1_2' });
    let maxBuffered = 0;
    for (let i = 0; i < 40; i++) {
      store.add(SUBJECTS[i % 4]);
      maxBuffered = Math.max(maxBuffered, hub.inspect(sub.id)?.buffered ?? 0);
    }
    expect(maxBuffered).toBe(4);
    store.resumeReads();
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    store.add('events.b.x');
    expect(sink.seqs()).toEqual(expected(store, ['events.>'], 2));
    // The first read stopped at the head seen when buffering started; a later one went further.
    expect(store.readerLog[0].untilSeq).toBe(30);
    expect(Math.max(...store.readerLog.map((r) => r.untilSeq))).toBe(70);
  });

  it('uses one covering filter for several patterns and matches exactly itself', async () => {
    const { store, hub } = await setup({ ringEvents: 1 }, (s) => {
      for (let i = 0; i < 30; i++) s.add(['events.a.x', 'events.a.y', 'events.a.z'][i % 3]);
    });
    const patterns = ['events.a.x', 'events.a.z'];
    const { sub, sink } = await open(hub, { patterns, cursor: 'e1_0' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(store.readerLog[0].filter).toBe('events.a.*');
    expect(sink.seqs()).toEqual(expected(store, patterns, 0));
  });

  it('overlapping patterns of one subscription deliver an event once', async () => {
    const { store, hub } = await setup({}, (s) => addMany(s, 8));
    const { sink } = await open(hub, { patterns: ['events.>', 'events.a.>', 'events.*.x'], cursor: 'e1_3' });
    addMany(store, 8);
    expect(sink.seqs()).toEqual(Array.from({ length: 13 }, (_, i) => i + 4));
  });
});

describe('FanoutHub: shared resources', () => {
  it('runs at most concurrentReplays store reads at once; the others wait their turn', async () => {
    const { store, hub } = await setup({ ringEvents: 2, concurrentReplays: 2, replayPageSize: 2 }, (s) =>
      addMany(s, 30),
    );
    store.pauseReads();
    const subs = await Promise.all(
      [0, 3, 6, 9, 12].map((c) => open(hub, { patterns: ['events.>'], cursor: `e1_${c}` })),
    );
    await waitFor(() => store.openReaders.size === 2, 'two readers');
    await ticks(10);
    expect(store.openReaders.size).toBe(2);
    expect(hub.stats()).toMatchObject({ replaysActive: 2, replaysWaiting: 3 });
    let maxOpen = 0;
    store.beforePage = () => {
      maxOpen = Math.max(maxOpen, store.openReaders.size);
    };
    store.resumeReads();
    await waitFor(() => subs.every((x) => isLiveAndCaughtUp(hub, store, x.sub)), 'all caught up');
    expect(maxOpen).toBe(2);
    expect(store.openReaderCalls).toBe(5);
    [0, 3, 6, 9, 12].forEach((c, i) => expect(subs[i].sink.seqs()).toEqual(expected(store, ['events.>'], c)));
  });

  it('a sink that throws does not keep events from the other subscriptions', async () => {
    const { store, hub } = await setup();
    const broken: DeliverySink = {
      send: () => {
        throw new Error('socket gone');
      },
      gap: () => undefined,
      backlog: () => 0,
      onceDrained: (cb) => setImmediate(cb),
    };
    await open(hub, { patterns: ['events.>'] }, broken);
    const { sink } = await open(hub, { patterns: ['events.>'] });
    addMany(store, 3);
    expect(sink.seqs()).toEqual([1, 2, 3]);
  });
});

describe('FanoutHub: ring fast path', () => {
  it('serves a recent cursor from memory: no reader, synchronously in begin()', async () => {
    const { store, hub } = await setup({ ringEvents: 50 });
    addMany(store, 40);
    const sink = new FakeSink();
    const sub = await hub.subscribe({ patterns: ['events.b.>'], cursor: 'e1_12' }, sink);
    sub.begin();
    expect(sink.seqs()).toEqual(expected(store, ['events.b.>'], 12));
    expect(hub.inspect(sub.id)?.mode).toBe('live');
    expect(store.openReaderCalls).toBe(0);
    // Only the retention check asked the store.
    expect(store.stateCalls).toBe(1);
  });

  it('a reconnect storm of recent cursors shares its store questions and reads nothing', async () => {
    const { store, hub } = await setup({ ringEvents: 200 });
    addMany(store, 150);
    const sinks = Array.from({ length: 2000 }, () => new FakeSink());
    await Promise.all(
      sinks.map((sink, i) => open(hub, { patterns: ['events.a.x'], cursor: `e1_${100 + (i % 50)}` }, sink)),
    );
    // One state() in flight when the storm started, one for everyone who asked meanwhile.
    expect(store.stateCalls).toBeLessThanOrEqual(2);
    expect(store.openReaderCalls).toBe(0);
    expect(sinks[7].seqs()).toEqual(expected(store, ['events.a.x'], 107));
    expect(sinks[1999].seqs()).toEqual(expected(store, ['events.a.x'], 149));
  });

  it('a resume on one topic of many takes its own events from the ring, in order, across a full sink', async () => {
    const topics = Array.from({ length: 20 }, (_, k) => `events.t${k}.tick`);
    const { store, hub } = await setup({ ringEvents: 1000, clientBufferEvents: 5 });
    addMany(store, 800, topics);
    const lookups = jest.spyOn(RingBuffer.prototype, 'matching');
    const sink = new FakeSink();
    sink.pause();
    const { sub } = await open(hub, { patterns: ['events.t4.>'], cursor: 'e1_100' }, sink);
    // Stopped at the sink's bound, part way through the topic's events.
    expect(expected(store, ['events.t4.>'], 100).length).toBeGreaterThan(50);
    expect(sink.deliveries.length).toBe(5);
    addMany(store, 40, topics);
    sink.resume();
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(sink.seqs()).toEqual(expected(store, ['events.t4.>'], 100));
    expect(store.openReaderCalls).toBe(0);
    // Answered by subject, not by testing all 700 entries one by one.
    expect(lookups.mock.results.some((r) => Array.isArray(r.value) && r.value.length > 0)).toBe(true);
    lookups.mockRestore();
  });

  it('announces a purge under a cursor the ring still covers, as any replica would, then replays from the ring', async () => {
    const { store, hub } = await setup({ ringEvents: 50 });
    addMany(store, 20);
    store.purge(8);
    const { sub, sink } = await open(hub, { patterns: ['events.>'], cursor: 'e1_3' });
    expect(sub.startCursor).toBe('e1_8');
    expect(sink.records[0]).toEqual({ kind: 'gap', notice: { from: 'e1_3', resumeCursor: 'e1_8' } });
    expect(sink.seqs()).toEqual(Array.from({ length: 12 }, (_, i) => i + 9));
    expect(hub.inspect(sub.id)?.mode).toBe('live');
    expect(store.openReaderCalls).toBe(0);
  });

  it('warms the ring at start, so resumes right after a restart are served from memory', async () => {
    const { store, hub } = await setup({ ringEvents: 30, replayPageSize: 7 }, (s) => addMany(s, 100));
    expect(hub.stats().ringSize).toBe(30);
    const { sub, sink } = await open(hub, { patterns: ['events.a.>'], cursor: 'e1_71' });
    expect(hub.inspect(sub.id)?.mode).toBe('live');
    expect(sink.seqs()).toEqual(expected(store, ['events.a.>'], 71));
    expect(store.openReaderCalls).toBe(0);
    addMany(store, 3);
    expect(sink.seqs()).toEqual(expected(store, ['events.a.>'], 71));
  });

  it('reads the store when the cursor is older than the ring', async () => {
    const { store, hub } = await setup({ ringEvents: 10 });
    addMany(store, 40);
    const { sub, sink } = await open(hub, { patterns: ['events.a.>'], cursor: 'e1_25' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(store.openReaderCalls).toBe(1);
    expect(store.readerLog[0]).toEqual({ fromSeq: 26, filter: 'events.a.>', untilSeq: 40 });
    expect(sink.seqs()).toEqual(expected(store, ['events.a.>'], 25));
  });
});

describe('FanoutHub: gaps', () => {
  it('announces a purge with a gap notice first, then continues from the oldest stored event', async () => {
    const { store, hub, counters } = await setup({ ringEvents: 5 }, (s) => addMany(s, 30));
    store.purge(10);
    const { sub, sink } = await open(hub, { patterns: ['events.a.>'], cursor: 'e1_4' });
    expect(sub.startCursor).toBe('e1_10');
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(sink.records[0]).toEqual({ kind: 'gap', notice: { from: 'e1_4', resumeCursor: 'e1_10' } });
    expect(sink.gaps).toHaveLength(1);
    expect(sink.seqs()).toEqual(expected(store, ['events.a.>'], 10));
    expect(counters.gap).toBe(1);

    // Resuming from the resume cursor gives no second notice; neither does the cursor just before firstSeq.
    const again = await open(hub, { patterns: ['events.a.>'], cursor: 'e1_10' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, again.sub), 'catch-up');
    expect(again.sink.gaps).toEqual([]);
    expect(again.sink.seqs()).toEqual(expected(store, ['events.a.>'], 10));
  });

  it('announces a gap even when the lost events would not have matched (the check is on the stream)', async () => {
    const { store, hub } = await setup({ ringEvents: 2 }, (s) => {
      s.add('events.a.x');
      addMany(s, 10, ['events.b.x']);
      s.add('events.a.x');
    });
    store.purge(5);
    const { sub, sink } = await open(hub, { patterns: ['events.a.x'], cursor: 'e1_1' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(sink.gaps).toEqual([{ from: 'e1_1', resumeCursor: 'e1_5' }]);
    expect(sink.seqs()).toEqual([12]);
  });

  it('a cursor of another epoch gets a gap notice and everything from the oldest event', async () => {
    const { store, hub } = await setup({ ringEvents: 100 }, (s) => addMany(s, 12));
    store.purge(3);
    const { sub, sink } = await open(hub, { patterns: ['events.>'], cursor: 'old1_7' });
    expect(sub.startCursor).toBe('e1_3');
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(sink.records[0]).toEqual({ kind: 'gap', notice: { from: 'old1_7', resumeCursor: 'e1_3' } });
    expect(sink.seqs()).toEqual(expected(store, ['events.>'], 3));
  });

  it('checks for a gap before a slow consumer catches up', async () => {
    const { store, hub, counters } = await setup({ ringEvents: 5, clientBufferEvents: 3 }, (s) => addMany(s, 4));
    const { sub, sink } = await open(hub, { patterns: ['events.>'] });
    sink.pause();
    addMany(store, 30);
    expect(counters.slowConsumer).toBe(1);
    expect(sink.seqs()).toEqual([5, 6, 7]);
    store.purge(20);
    sink.resume();
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(sink.gaps).toEqual([{ from: 'e1_7', resumeCursor: 'e1_20' }]);
    expect(sink.records.findIndex((r) => r.kind === 'gap')).toBe(3);
    expect(sink.seqs()).toEqual([5, 6, 7, ...expected(store, ['events.>'], 20)]);
  });

  it('a live tap that skips purged sequences makes subscriptions announce the gap', async () => {
    const { store, hub } = await setup({ ringEvents: 50 }, (s) => addMany(s, 5));
    const { sub, sink } = await open(hub, { patterns: ['events.>'] });
    store.pauseTail();
    addMany(store, 15);
    store.purge(12);
    store.resumeTail();
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    addMany(store, 2);
    expect(sink.records[0]).toEqual({ kind: 'gap', notice: { from: 'e1_5', resumeCursor: 'e1_12' } });
    expect(sink.seqs()).toEqual(Array.from({ length: 10 }, (_, i) => i + 13));
  });
});

describe('FanoutHub: a recreated stream (new epoch)', () => {
  it('sends every subscription a gap notice and continues from the new stream start', async () => {
    const { store, hub } = await setup({ ringEvents: 50 }, (s) => addMany(s, 6));
    const live = await open(hub, { patterns: ['events.>'] });
    const pending = { sink: new FakeSink(), sub: undefined as Subscription | undefined };
    pending.sub = await hub.subscribe({ patterns: ['events.a.>'], cursor: 'e1_2' }, pending.sink);
    store.recreate('e2');
    addMany(store, 3);
    await hub.checkEpoch();
    expect(hub.stats().epoch).toBe('e2');
    await waitFor(() => isLiveAndCaughtUp(hub, store, live.sub), 'catch-up');
    addMany(store, 2);
    expect(live.sink.records[0]).toEqual({ kind: 'gap', notice: { from: 'e1_6', resumeCursor: 'e2_0' } });
    expect(live.sink.deliveries.map((d) => d.cursor)).toEqual(['e2_1', 'e2_2', 'e2_3', 'e2_4', 'e2_5']);
    expect(live.sub.cursor).toBe('e2_5');

    // A subscription not yet begun gets its notice at begin(), from the cursor it asked for.
    pending.sub.begin();
    await waitFor(() => isLiveAndCaughtUp(hub, store, pending.sub as Subscription), 'catch-up');
    expect(pending.sink.records[0]).toEqual({ kind: 'gap', notice: { from: 'e1_2', resumeCursor: 'e2_0' } });
    expect(pending.sink.seqs()).toEqual(expected(store, ['events.a.>'], 0));
  });

  it('notices the new epoch by its periodic check', async () => {
    const { store, hub } = await setup({ epochCheckMs: 5 }, (s) => addMany(s, 4));
    const { sub, sink } = await open(hub, { patterns: ['events.>'] });
    store.recreate('e9');
    store.add('events.a.x');
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub) && sink.gaps.length === 1, 'new epoch');
    expect(sink.records).toEqual([
      { kind: 'gap', notice: { from: 'e1_4', resumeCursor: 'e9_0' } },
      { kind: 'event', delivery: expect.objectContaining({ seq: 1, cursor: 'e9_1' }) },
    ]);
  });

  it('notices the new epoch on a subscribe that reads the stream state', async () => {
    const { store, hub } = await setup({ ringEvents: 2 }, (s) => addMany(s, 6));
    const live = await open(hub, { patterns: ['events.>'] });
    store.recreate('e2');
    addMany(store, 2);
    const fresh = await open(hub, { patterns: ['events.>'], cursor: 'e1_3' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, fresh.sub), 'catch-up');
    expect(fresh.sub.startCursor).toBe('e2_0');
    expect(fresh.sink.gaps).toEqual([{ from: 'e1_3', resumeCursor: 'e2_0' }]);
    await waitFor(() => live.sink.gaps.length === 1, 'gap on the live subscription');
    expect(live.sink.gaps).toEqual([{ from: 'e1_6', resumeCursor: 'e2_0' }]);
  });
});

describe('FanoutHub: slow consumers', () => {
  it('a sink that stops reading while 50,000 events flow costs bounded memory and then gets all of them once', async () => {
    const bound = 100;
    const { store, hub, counters } = await setup({
      ringEvents: 1000,
      clientBufferEvents: bound,
      replayPageSize: 512,
    });
    const { sub, sink } = await open(hub, { patterns: ['events.>'] });
    const other = await open(hub, { patterns: ['events.a.x'] });
    sink.pause();
    let maxBuffered = 0;
    for (let i = 0; i < 50_000; i++) {
      store.add(SUBJECTS[i % 4], { i });
      maxBuffered = Math.max(maxBuffered, hub.stats().buffered);
      if (i % 5000 === 0) await ticks();
    }
    expect(maxBuffered).toBeLessThanOrEqual(bound);
    expect(sink.maxBacklog).toBeLessThanOrEqual(bound);
    expect(sink.deliveries.length).toBeLessThanOrEqual(bound);
    expect(counters.slowConsumer).toBe(1);
    // The other subscription was not held back.
    expect(other.sink.seqs()).toEqual(expected(store, ['events.a.x'], 0));

    sink.resume();
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    store.add('events.b.y');
    const seqs = sink.seqs();
    expect(seqs).toHaveLength(50_001);
    expect(seqs).toEqual(Array.from({ length: 50_001 }, (_, i) => i + 1));
    expect(store.openReaders.size).toBe(0);
  });

  it('a catch-up waits for the sink to drain between batches', async () => {
    const { store, hub } = await setup({ ringEvents: 10, clientBufferEvents: 5, replayPageSize: 4 }, (s) =>
      addMany(s, 60),
    );
    const sink = new FakeSink();
    sink.pause();
    const { sub } = await open(hub, { patterns: ['events.>'], cursor: 'e1_0' }, sink);
    await waitFor(() => sink.backlog() >= 5, 'backlog at the bound');
    await ticks(20);
    // Stalled at the bound: at most one page past it.
    expect(sink.deliveries.length).toBeLessThanOrEqual(5 + 4);
    expect(hub.inspect(sub.id)?.mode).toBe('catchup');
    sink.resume();
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(sink.seqs()).toEqual(expected(store, ['events.>'], 0));
  });
});

describe('FanoutHub: close and supersede', () => {
  it('close() during a catch-up closes its reader and delivers nothing after', async () => {
    const { store, hub } = await setup({ ringEvents: 2, replayPageSize: 3 }, (s) => addMany(s, 20));
    let pages = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    store.beforePage = async () => {
      if (++pages === 2) await gate;
    };
    const { sub, sink } = await open(hub, { patterns: ['events.>'], cursor: 'e1_0' });
    await waitFor(() => pages === 2, 'second page requested');
    expect(store.openReaders.size).toBe(1);
    const before = sink.records.length;
    expect(before).toBe(3);
    sub.close();
    sub.close();
    expect(store.openReaders.size).toBe(0);
    expect(hub.subscriptionCount).toBe(0);
    release();
    addMany(store, 5);
    await ticks(10);
    expect(sink.records.length).toBe(before);
    expect(hub.stats().replaysActive).toBe(0);
  });

  it('a subscription superseded by a newer one on the same sink does not interfere', async () => {
    const { store, hub } = await setup({ ringEvents: 2, replayPageSize: 4, concurrentReplays: 1 }, (s) =>
      addMany(s, 30),
    );
    const socket = new FakeSink();
    store.pauseReads();
    const first = await open(hub, { patterns: ['events.a.>'], cursor: 'e1_3' }, socket.channel('first'));
    await waitFor(() => store.openReaders.size === 1, 'first reader open');
    // The client reconnects: a new subscription from the same cursor; then the old one is closed.
    const second = await open(hub, { patterns: ['events.a.>'], cursor: 'e1_3' }, socket.channel('second'));
    addMany(store, 6);
    first.sub.close();
    store.resumeReads();
    await waitFor(() => isLiveAndCaughtUp(hub, store, second.sub), 'catch-up');
    addMany(store, 3);
    expect(socket.seqsOf('first')).toEqual([]);
    expect(socket.seqsOf('second')).toEqual(expected(store, ['events.a.>'], 3));
    expect(store.openReaders.size).toBe(0);
  });

  it('several subscriptions on one sink are independent', async () => {
    const { store, hub } = await setup({ ringEvents: 8 }, (s) => addMany(s, 20));
    const socket = new FakeSink();
    const a = await open(hub, { patterns: ['events.a.>'], cursor: 'e1_2' }, socket.channel('a'));
    const b = await open(hub, { patterns: ['events.>'], cursor: 'e1_15' }, socket.channel('b'));
    await waitFor(() => isLiveAndCaughtUp(hub, store, a.sub) && isLiveAndCaughtUp(hub, store, b.sub), 'both');
    addMany(store, 4);
    b.sub.close();
    addMany(store, 4);
    expect(socket.seqsOf('a')).toEqual(expected(store, ['events.a.>'], 2));
    expect(socket.seqsOf('b')).toEqual(expected(store, ['events.>'], 15).filter((s) => s <= 24));
  });

  it('stop() closes every subscription', async () => {
    const { store, hub } = await setup({}, (s) => addMany(s, 3));
    const { sink } = await open(hub, { patterns: ['events.>'] });
    await hub.stop();
    expect(hub.subscriptionCount).toBe(0);
    expect(hub.isLive()).toBe(false);
    store.add('events.a.x');
    expect(sink.records).toEqual([]);
    const err = await hub.subscribe({ patterns: ['events.>'] }, new FakeSink()).catch((e: unknown) => e);
    expect((err as SubscribeError).code).toBe('unavailable');
  });
});

describe('FanoutHub: store failures during a catch-up', () => {
  it('retries failed pages and reader opens without skipping anything', async () => {
    const { store, hub } = await setup({ ringEvents: 2, replayPageSize: 3 }, (s) => addMany(s, 40));
    let pages = 0;
    store.beforePage = () => {
      pages++;
      if (pages === 2 || pages === 5) store.failReads(1);
      if (pages === 7) {
        store.failReads(1);
        store.failOpens(2);
      }
    };
    const { sub, sink } = await open(hub, { patterns: ['events.b.>', 'events.a.y'], cursor: 'e1_1' });
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    addMany(store, 5);
    expect(sink.seqs()).toEqual(expected(store, ['events.b.>', 'events.a.y'], 1));
    expect(store.openReaderCalls).toBe(6);
    expect(store.openReaders.size).toBe(0);
  });

  it('waits out a store outage mid-catch-up', async () => {
    const { store, hub } = await setup({ ringEvents: 2, replayPageSize: 5 }, (s) => addMany(s, 30));
    let pages = 0;
    store.beforePage = () => {
      if (++pages === 2) store.setAvailable(false);
    };
    const { sub, sink } = await open(hub, { patterns: ['events.>'], cursor: 'e1_0' });
    await waitFor(() => pages === 2, 'outage');
    await ticks(10);
    expect(sink.seqs()).toEqual([1, 2, 3, 4, 5]);
    store.setAvailable(true);
    await waitFor(() => isLiveAndCaughtUp(hub, store, sub), 'catch-up');
    expect(sink.seqs()).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });
});
