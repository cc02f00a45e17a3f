/**
 * Replay fairness and per-client memory: replay slots capped per connection and time-sliced, a byte budget on
 * what one client may have queued, and the slow-consumer close. Over the in-memory store; the gap-free and
 * no-duplicate checks of the other fan-out specs apply here too.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { matchesSubject } from '../events/pattern.js';
import { FanoutHub, type FanoutOptions, type Subscription } from './fanout-hub.js';
import type { DeliverySink } from './fanout.types.js';
import { FakeSink, ticks, waitFor } from '../../test/support/fake-sink.js';
import { MemoryEventStore } from '../../test/support/memory-event-store.js';

const SUBJECTS = ['events.a.x', 'events.a.y', 'events.b.x', 'events.b.y'];
const hubs: FanoutHub[] = [];

afterEach(async () => {
  for (const h of hubs.splice(0)) await h.stop();
});

async function setup(opts: Partial<FanoutOptions>, events: number) {
  const store = new MemoryEventStore();
  for (let i = 0; i < events; i++) store.add(SUBJECTS[i % SUBJECTS.length], { i, pad: 'x'.repeat(100) });
  const counters = { slowConsumerClosed: 0 };
  const hub = new FanoutHub(
    store,
    {
      ringEvents: 2,
      clientBufferEvents: 1000,
      concurrentReplays: 2,
      replayPageSize: 50,
      epochCheckMs: 0,
      retryDelayMs: 2,
      ...opts,
    },
    { slowConsumerClosed: () => counters.slowConsumerClosed++ },
  );
  hubs.push(hub);
  await hub.start();
  return { store, hub, counters };
}

function expected(store: MemoryEventStore, pattern: string, after: number): number[] {
  return store
    .stored()
    .filter((e) => e.seq > after && matchesSubject(pattern, e.subject))
    .map((e) => e.seq);
}

async function open(hub: FanoutHub, sink: DeliverySink, cursor: string, pattern = 'events.>'): Promise<Subscription> {
  const sub = await hub.subscribe({ patterns: [pattern], cursor }, sink);
  sub.begin();
  return sub;
}

const isLive = (hub: FanoutHub, sub: Subscription) => hub.inspect(sub.id)?.mode === 'live';

describe('replay slots', () => {
  it('one connection opening many deep replays does not starve another client’s resume', async () => {
    const { store, hub } = await setup({ replaysPerConnection: 2, replaySliceSeqs: 200 }, 3000);
    store.pauseReads();
    const greedy = new FakeSink();
    const deep: Subscription[] = [];
    for (let i = 0; i < 10; i++) deep.push(await open(hub, greedy.channel(`d${i}`), 'e1_0'));
    // How many deep replays are unfinished when the other client receives the last event of its resume.
    let stillReplaying = -1;
    const other = new FakeSink();
    const send = other.send.bind(other);
    other.send = (d) => {
      send(d);
      if (d.seq === store.lastSeq) stillReplaying = deep.filter((s) => !isLive(hub, s)).length;
    };
    const resume = await open(hub, other, 'e1_2500');
    expect(hub.stats()).toMatchObject({ replaysActive: 2, replaysWaiting: 9 });
    store.resumeReads();

    await waitFor(() => isLive(hub, resume), 'the other client’s resume');
    // The resume finished after a few slices, long before the greedy connection's replays could.
    expect(stillReplaying).toBeGreaterThanOrEqual(8);
    expect(other.seqs()).toEqual(expected(store, 'events.>', 2500));

    await waitFor(() => deep.every((s) => isLive(hub, s)), 'every deep replay', 20_000);
    for (let i = 0; i < 10; i++) expect(greedy.seqsOf(`d${i}`)).toEqual(expected(store, 'events.>', 0));
    expect(store.openReaders.size).toBe(0);
  });

  it('a connection holds at most replaysPerConnection slots; other connections use the rest', async () => {
    const { store, hub } = await setup({ concurrentReplays: 4, replaysPerConnection: 2 }, 400);
    store.pauseReads();
    const a = new FakeSink();
    const subs: Subscription[] = [];
    for (let i = 0; i < 6; i++) subs.push(await open(hub, a.channel(`a${i}`), `e1_${i * 10}`));
    const b = new FakeSink();
    subs.push(await open(hub, b, 'e1_100'));
    await ticks(10);
    expect(hub.stats()).toMatchObject({ replaysActive: 3, replaysWaiting: 4 });
    expect(store.openReaders.size).toBe(3);
    let maxOpen = 0;
    store.beforePage = () => {
      maxOpen = Math.max(maxOpen, store.openReaders.size);
    };
    store.resumeReads();
    await waitFor(() => subs.every((s) => isLive(hub, s)), 'every replay');
    expect(maxOpen).toBeLessThanOrEqual(3);
    for (let i = 0; i < 6; i++) expect(a.seqsOf(`a${i}`)).toEqual(expected(store, 'events.>', i * 10));
    expect(b.seqs()).toEqual(expected(store, 'events.>', 100));
  });
  it('a read that starts while others wait ends at its slice, so a scan that matches little gives the slot back', async () => {
    const { store, hub } = await setup({ concurrentReplays: 1, replaySliceSeqs: 100 }, 1000);
    store.pauseReads();
    const a = new FakeSink();
    const first = await open(hub, a, 'e1_0');
    const b = new FakeSink();
    const second = await open(hub, b, 'e1_500', 'events.none.>');
    store.resumeReads();
    await waitFor(() => isLive(hub, first) && isLive(hub, second), 'both live');
    // The second read began while the first waited for its next slice: it was opened up to its slice's end only.
    expect(store.readerLog).toContainEqual({ fromSeq: 501, filter: 'events.none.>', untilSeq: 600 });
    expect(Math.max(...store.readerLog.map((r) => r.untilSeq - r.fromSeq + 1))).toBe(1000);
    expect(a.seqs()).toEqual(expected(store, 'events.>', 0));
    expect(b.seqs()).toEqual([]);
  });
});

describe('per-client byte budget and slow consumers', () => {
  it('bounds what a client that stopped reading has queued in bytes, live and in catch-up, and loses nothing', async () => {
    const { store, hub } = await setup({ clientBufferBytes: 2000, clientBufferEvents: 1000, slowConsumerMs: 0 }, 0);
    const live = new FakeSink();
    const liveSub = await open(hub, live, 'e1_0');
    await waitFor(() => isLive(hub, liveSub), 'live');
    live.pause();
    for (let i = 0; i < 300; i++) store.add(SUBJECTS[i % 4], { i, pad: 'x'.repeat(100) });
    const size = live.deliveries[0].json.length;
    expect(live.maxBacklogBytes).toBeLessThan(2000 + size);

    const behind = new FakeSink();
    behind.pause();
    const catchup = await open(hub, behind, 'e1_0');
    await ticks(20);
    expect(behind.maxBacklogBytes).toBeLessThan(2000 + size);
    for (const sink of [live, behind]) {
      // The client reads again, a budget at a time, until it is live with everything.
      while (!sink.seqs().includes(300)) {
        sink.resume();
        sink.pause();
        await ticks(5);
      }
      sink.resume();
    }
    await waitFor(() => isLive(hub, liveSub) && isLive(hub, catchup), 'both live');
    expect(live.seqs()).toEqual(expected(store, 'events.>', 0));
    expect(behind.seqs()).toEqual(expected(store, 'events.>', 0));
    expect(Math.max(live.maxBacklogBytes, behind.maxBacklogBytes)).toBeLessThan(2000 + size);
  });

  it('asks a connection that stays behind to close as a slow consumer, once for all its subscriptions', async () => {
    const { store, hub, counters } = await setup({ clientBufferEvents: 20, slowConsumerMs: 50 }, 0);
    const conn = new FakeSink();
    const one = await open(hub, conn.channel('one'), 'e1_0');
    const two = await open(hub, conn.channel('two'), 'e1_0', 'events.a.>');
    await waitFor(() => isLive(hub, one) && isLive(hub, two), 'live');
    const reader = new FakeSink();
    const fine = await open(hub, reader, 'e1_0');
    conn.pause();
    for (let i = 0; i < 100; i++) store.add(SUBJECTS[i % 4], { i });
    await waitFor(() => conn.slowConsumerCalls > 0, 'the slow-consumer close');
    await ticks(10);
    expect(conn.slowConsumerCalls).toBe(1);
    expect(counters.slowConsumerClosed).toBe(1);
    // Everyone else is unaffected.
    await waitFor(() => isLive(hub, fine) && reader.seqs().length === 100, 'the reading client');
    expect(reader.slowConsumerCalls).toBe(0);
    one.close();
    two.close();
  });
});
