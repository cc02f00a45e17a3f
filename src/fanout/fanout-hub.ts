/**
 * The per-process fan-out hub (DESIGN.md §1, §5; nats-nest-notes.md §3): ONE live tail of the store feeds a
 * ring of recent events and a subject-pattern router; each subscription catches up from its start position
 * (ring, else paged store reads under a per-process semaphore) and hands off to live without gap or duplicate.
 * Pure TypeScript over the store port: no Nest, NATS or socket import.
 *
 * Choices where the contract leaves room:
 * - Resuming a cursor always asks the stream whether the events after it are retained (a gap is the stream's
 *   call, the same on every replica, even when this ring still holds them), but concurrent subscribes share
 *   one state() call, and a recent cursor's events come from the ring. While the store is unreachable, a
 *   cursor the ring covers is still served (without that check); others get `unavailable`.
 * - At start the ring is warmed with the last `ringEvents` stored events, so resumes right after a deploy are
 *   served from memory too.
 * - The tap skipping sequences (purged while it was down) sends every subscription through a store catch-up,
 *   whose hole check announces what is really gone.
 * - Stream recreated (new epoch, seen by a state() call: the periodic check, a subscribe or a catch-up): the
 *   hub drops its ring, tails the new stream from its last seq + 1, and every subscription gets a gap notice
 *   `{from: <its cursor>, resumeCursor: <new epoch, firstSeq - 1>}` and catches up from the new stream's
 *   start. Events of the new stream the tap passed on before the change was noticed carried old-epoch
 *   cursors; they are delivered again after the notice (clients reset their seq mark on a gap).
 */
import { decodeCursor, encodeCursor, parseStart, type Cursor, type StartPoint } from '../events/cursor.js';
import { coveringPattern, PatternIndex } from '../events/pattern.js';
import type { EventStore, StoredEvent, StreamState, Tail } from '../store/event-store.port.js';
import { delay, Semaphore, SharedCall } from './async-tools.js';
import {
  SubscribeError,
  type Delivery,
  type DeliverySink,
  type FanoutLogger,
  type FanoutMetrics,
  type GapNotice,
} from './fanout.types.js';
import { RingBuffer } from './ring-buffer.js';
import { storedDelivery } from './stored-delivery.js';
import { FanoutSubscription, type HubCore, type Subscription, type SubscriptionDebug } from './subscription.js';

export type { Subscription, SubscriptionDebug } from './subscription.js';

export interface FanoutOptions {
  /** Recent live events kept in memory for resumes without a store read. */
  ringEvents: number;
  /** Per subscription: most live events buffered during a catch-up, and the sink backlog that counts as slow. */
  clientBufferEvents: number;
  /** Most store catch-up reads in flight at once in this process. */
  concurrentReplays: number;
  /** Most of those one connection may hold (its other reads wait their turn). Default: concurrentReplays. */
  replaysPerConnection?: number;
  /**
   * Seqs a store read may advance while other reads wait for a slot; then it gives its slot back and queues
   * again behind them. Default 4096.
   */
  replaySliceSeqs?: number;
  /** Byte budget of one connection's unsent deliveries (and of one hand-off buffer). Default: unlimited. */
  clientBufferBytes?: number;
  /** A connection behind its bounds for this long is closed as a slow consumer. Default 30000; 0: never. */
  slowConsumerMs?: number;
  /** Events per store page. Default 512. */
  replayPageSize?: number;
  /** Period of the background epoch check (stream recreated?). Default 5000; 0 disables it. */
  epochCheckMs?: number;
  /** First retry delay after a store error (doubles up to 5 s). Default 100. */
  retryDelayMs?: number;
}

export interface SubscribeRequest {
  /** Valid, authorised patterns (checked by the caller). */
  patterns: string[];
  cursor?: string;
  from?: string;
}

export interface FanoutStats {
  epoch: string | null;
  head: number;
  live: boolean;
  subscriptions: number;
  ringSize: number;
  /** Live events held in hand-off buffers, all subscriptions together. */
  buffered: number;
  replaysActive: number;
  replaysWaiting: number;
}

interface StartResolution {
  lastSent: number;
  gap: GapNotice | null;
}

const START_WAIT_MS = 2_000;
const MAX_CONNECT_DELAY_MS = 5_000;
const DRAIN_HOLD_MS = 1_000;
const noopLog: FanoutLogger = { warn: () => undefined, error: () => undefined };

export class FanoutHub {
  private readonly ring: RingBuffer;
  private readonly index = new PatternIndex<FanoutSubscription>();
  private readonly subs = new Map<string, FanoutSubscription>();
  private readonly replays: Semaphore;
  private readonly core: HubCore;
  private readonly decoder = new TextDecoder();
  private readonly log: FanoutLogger;
  private readonly metrics: FanoutMetrics;

  private epoch: string | null = null;
  /** Epochs seen before the current one: a late state() answer naming one of them is ignored. */
  private readonly retired = new Set<string>();
  private head = 0;
  private tail: Tail | null = null;
  /** Identifies the current tail; events from a superseded one are ignored. */
  private tailGen = 0;
  private attempt: Promise<boolean> | null = null;
  private connectLooping = false;
  private started = false;
  private stopped = false;
  /** Cuts retry waits short on stop(). */
  private readonly stopping = new AbortController();
  private epochTimer: ReturnType<typeof setInterval> | undefined;
  private counter = 0;
  /** store.state(), shared by concurrent callers (reconnect storms ask it once per round trip, not per client). */
  private readonly streamState: SharedCall<StreamState>;
  /** Connections already asked to close as slow consumers. */
  private readonly closedSlow = new WeakSet<object>();

  constructor(
    private readonly store: EventStore,
    private readonly options: FanoutOptions,
    metrics?: FanoutMetrics,
    log?: FanoutLogger,
  ) {
    if (!(options.clientBufferEvents >= 1)) throw new RangeError('clientBufferEvents must be at least 1');
    if (!(options.concurrentReplays >= 1)) throw new RangeError('concurrentReplays must be at least 1');
    this.metrics = metrics ?? {};
    this.log = log ?? noopLog;
    this.ring = new RingBuffer(Math.max(0, Math.floor(options.ringEvents)));
    const perConnection = options.replaysPerConnection ?? options.concurrentReplays;
    if (!(perConnection >= 1)) throw new RangeError('replaysPerConnection must be at least 1');
    this.replays = new Semaphore(options.concurrentReplays, perConnection);
    this.streamState = new SharedCall(() => store.state());
    this.core = {
      store,
      head: () => this.head,
      state: () => this.streamState.get(),
      ring: this.ring,
      replays: this.replays,
      bufferBound: options.clientBufferEvents,
      bufferBytes: options.clientBufferBytes ?? Infinity,
      pageSize: Math.max(1, options.replayPageSize ?? 512),
      sliceSeqs: Math.max(1, options.replaySliceSeqs ?? 4096),
      slowConsumerMs: Math.max(0, options.slowConsumerMs ?? 30_000),
      closeSlow: (sink) => this.closeSlow(sink),
      retryDelayMs: Math.max(1, options.retryDelayMs ?? 100),
      drainHoldMs: DRAIN_HOLD_MS,
      metrics: this.metrics,
      log: this.log,
      toDelivery: (ev) => this.ring.get(ev.seq) ?? this.toDelivery(ev),
      observeState: (st) => this.observeState(st),
      unregister: (sub) => this.unregister(sub),
    };
  }

  /**
   * Reads state(), remembers the epoch, starts ONE store tail from lastSeq+1 (the live tap), H = lastSeq, and
   * warms the ring with the last `ringEvents` stored events (one read). Keeps retrying in the background while
   * the store is unreachable; resolves after the first attempt (or a short wait), either way.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.attemptConnect(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, START_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!this.isLive()) void this.connectLoop();
    const every = this.options.epochCheckMs ?? 5_000;
    if (every > 0 && !this.stopped) {
      this.epochTimer = setInterval(() => void this.checkEpoch(), every);
      this.epochTimer.unref?.();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    clearInterval(this.epochTimer);
    this.epochTimer = undefined;
    this.forEachSub((sub) => sub.close());
    const tail = this.tail;
    this.tail = null;
    this.tailGen++;
    if (tail) await tail.stop().catch((err: unknown) => this.log.warn({ err }, 'tail stop failed'));
  }

  /** True while the live tap is running (epoch known, tail started, not stopped). */
  isLive(): boolean {
    return !this.stopped && this.epoch !== null && this.tail !== null;
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  stats(): FanoutStats {
    let buffered = 0;
    for (const sub of this.subs.values()) buffered += sub.inspect().buffered;
    return {
      epoch: this.epoch,
      head: this.head,
      live: this.isLive(),
      subscriptions: this.subs.size,
      ringSize: this.ring.size,
      buffered,
      replaysActive: this.replays.inUse,
      replaysWaiting: this.replays.waiting,
    };
  }

  /** Introspection of one subscription (tests, debugging). */
  inspect(id: string): SubscriptionDebug | undefined {
    return this.subs.get(id)?.inspect();
  }

  /**
   * Asks the store for its state and adopts a new epoch if the stream was recreated. Runs periodically;
   * callable directly (e.g. by a readiness probe). Store errors are ignored here.
   */
  async checkEpoch(): Promise<void> {
    if (this.stopped || this.epoch === null) return;
    try {
      this.observeState(await this.streamState.get());
    } catch {
      // The store is unreachable: nothing to learn now.
    }
  }

  /**
   * Phase 1: validates cursor/from, resolves the start position and registers the subscription (live events
   * are buffered for it from now on). Delivers nothing until `begin()`. Throws SubscribeError.
   */
  async subscribe(req: SubscribeRequest, sink: DeliverySink): Promise<Subscription> {
    if (this.stopped) throw new SubscribeError('unavailable', 'the fan-out is stopped');
    let cursor: Cursor | null = null;
    let start: StartPoint = { kind: 'latest' };
    if (req.cursor !== undefined) {
      cursor = decodeCursor(req.cursor);
      if (!cursor) throw new SubscribeError('invalid_cursor', 'the cursor does not decode');
    } else if (req.from !== undefined) {
      const parsed = parseStart(req.from);
      if (!parsed) throw new SubscribeError('invalid_cursor', 'from must be earliest, latest or an RFC 3339 time');
      start = parsed;
    }
    const patterns = [...new Set(req.patterns)];
    if (patterns.length === 0) throw new RangeError('subscribe needs at least one pattern');

    // A new epoch adopted while resolving makes the result meaningless: resolve again (rare).
    for (let round = 0; round < 3; round++) {
      if (this.epoch === null) {
        await this.attemptConnect();
        if (this.epoch === null) throw new SubscribeError('unavailable', 'the event store cannot be read');
      }
      const epoch = this.epoch;
      let resolved: StartResolution | null;
      try {
        resolved = await this.resolveStart(epoch, cursor, req.cursor, start);
      } catch (err) {
        this.log.warn({ err }, 'subscribe: store read failed');
        throw new SubscribeError('unavailable', 'the event store cannot be read');
      }
      if (this.stopped) throw new SubscribeError('unavailable', 'the fan-out is stopped');
      if (!resolved || this.epoch !== epoch) continue;
      // Synchronous from here: register while H is what the resolution saw or later (no await before this).
      const sub = new FanoutSubscription(this.core, `s${++this.counter}`, patterns, coveringPattern(patterns), sink, {
        epoch,
        ...resolved,
      });
      for (const p of patterns) this.index.add(p, sub);
      this.subs.set(sub.id, sub);
      return sub;
    }
    throw new SubscribeError('unavailable', 'the stream changed while subscribing; retry');
  }

  /** Start position → lastSent (the seq the subscription starts after), gap notice if any. Null: epoch moved. */
  private async resolveStart(
    epoch: string,
    cursor: Cursor | null,
    cursorText: string | undefined,
    start: StartPoint,
  ): Promise<StartResolution | null> {
    if (cursor) {
      // A recent cursor's events come from the ring, but whether they are still retained is the stream's call
      // (the same answer on every replica); concurrent subscribes share that one question.
      const recent = cursor.epoch === epoch && (cursor.seq >= this.head || this.ring.covers(cursor.seq));
      let st: StreamState | null;
      try {
        st = await this.currentState();
      } catch (err) {
        if (!recent) throw err;
        // The store is unreachable: a recent cursor is still served from memory (no retention check possible).
        this.log.warn({ err }, 'subscribe: stream state unavailable; resuming from the ring');
        return { lastSent: cursor.seq, gap: null };
      }
      if (!st) return null;
      if (cursor.epoch !== st.epoch || cursor.seq + 1 < st.firstSeq) {
        const resume = st.firstSeq - 1;
        const gap = { from: cursorText as string, resumeCursor: encodeCursor({ epoch: st.epoch, seq: resume }) };
        return { lastSent: resume, gap };
      }
      return { lastSent: cursor.seq, gap: null };
    }
    switch (start.kind) {
      case 'latest':
        return { lastSent: this.head, gap: null };
      case 'earliest': {
        const st = await this.currentState();
        if (!st) return null;
        return { lastSent: st.firstSeq - 1, gap: null };
      }
      case 'time': {
        const seq = await this.store.seqAtTime(start.ms);
        return { lastSent: Math.max(0, seq - 1), gap: null };
      }
    }
  }

  /** state() of the hub's current epoch, or null when the answer was of another epoch (adopted if new). */
  private async currentState(): Promise<StreamState | null> {
    const st = await this.streamState.get();
    return this.observeState(st) === 'current' ? st : null;
  }

  private observeState(st: StreamState): 'current' | 'switched' | 'stale' {
    if (st.epoch === this.epoch) return 'current';
    if (this.retired.has(st.epoch) || this.stopped) return 'stale';
    this.adoptEpoch(st);
    return 'switched';
  }

  /** The stream was recreated: new ring, new tail from its last seq + 1, gap notice for every subscription. */
  private adoptEpoch(st: StreamState): void {
    this.log.warn(
      { from: this.epoch, to: st.epoch, firstSeq: st.firstSeq, lastSeq: st.lastSeq },
      'stream epoch changed',
    );
    if (this.epoch !== null) this.retired.add(this.epoch);
    this.epoch = st.epoch;
    this.head = st.lastSeq;
    this.ring.clear();
    const tail = this.tail;
    this.tail = null;
    this.tailGen++;
    if (tail) tail.stop().catch((err: unknown) => this.log.warn({ err }, 'old tail stop failed'));
    this.forEachSub((sub) => sub.onNewEpoch(st.epoch, st.firstSeq));
    void this.connectLoop();
  }

  /** One attempt to learn the epoch (if unknown) and start the tail; concurrent callers share it. */
  private attemptConnect(): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    if (this.epoch !== null && this.tail !== null) return Promise.resolve(true);
    if (this.attempt) return this.attempt;
    const p = this.connectOnce();
    this.attempt = p;
    void p.finally(() => {
      if (this.attempt === p) this.attempt = null;
    });
    return p;
  }

  private async connectOnce(): Promise<boolean> {
    try {
      if (this.epoch === null) {
        const st = await this.store.state();
        if (this.stopped) return false;
        if (this.epoch === null) {
          this.epoch = st.epoch;
          this.head = st.lastSeq;
        }
      }
      if (this.tail === null) {
        const gen = ++this.tailGen;
        const before = this.head;
        const tail = await this.store.tail(this.head + 1, (ev) => this.onTailEvent(ev, gen));
        if (gen !== this.tailGen || this.stopped) {
          tail.stop().catch(() => undefined);
          return false;
        }
        this.tail = tail;
        await this.warmRing(before, gen);
      }
      return true;
    } catch (err) {
      this.log.warn({ err }, 'live tap not started; retrying');
      return false;
    }
  }

  /**
   * Fills the ring with the events just before the tail's start, so resumes right after a deploy or restart
   * (a reconnect storm) are served from memory too. Best effort: any failure leaves the ring as it is.
   */
  private async warmRing(before: number, gen: number): Promise<void> {
    const want = Math.min(this.ring.capacity, before);
    if (want <= 0 || this.ring.size >= this.ring.capacity) return;
    const events: StoredEvent[] = [];
    try {
      const reader = await this.store.openReader({ fromSeq: before - want + 1, filter: '>', untilSeq: before });
      try {
        for (;;) {
          const page = await reader.next(this.core.pageSize);
          if (page.length === 0 || gen !== this.tailGen) break;
          events.push(...page);
          if (page[page.length - 1].seq >= before) break;
        }
      } finally {
        reader.close().catch(() => undefined);
      }
    } catch (err) {
      this.log.warn({ err }, 'ring warm-up read failed; continuing with an empty ring');
      return;
    }
    if (gen !== this.tailGen || this.stopped) return;
    // Keep the contiguous run ending exactly where the tail started.
    let end = events.length - 1;
    while (end >= 0 && events[end].seq > before) end--;
    if (end < 0 || events[end].seq !== before) return;
    let start = end;
    while (start > 0 && events[start - 1].seq === events[start].seq - 1) start--;
    const min = this.ring.minSeq;
    if (min !== undefined && min !== before + 1) return; // the tap jumped meanwhile
    this.ring.prependOlder(events.slice(start, end + 1).map((ev) => this.toDelivery(ev)));
  }

  /** Retries connecting with backoff until the tail runs or the hub stops. One loop at a time. */
  private async connectLoop(): Promise<void> {
    if (this.connectLooping) return;
    this.connectLooping = true;
    try {
      let wait = this.core.retryDelayMs;
      while (!this.stopped && !this.isLive()) {
        if (await this.attemptConnect()) break;
        if (this.stopped) break;
        await delay(wait, this.stopping.signal);
        wait = Math.min(wait * 2, MAX_CONNECT_DELAY_MS);
      }
    } finally {
      this.connectLooping = false;
    }
  }

  /** The live tap's handler: synchronous, in order (ring, then routing via the pattern index). */
  private onTailEvent(ev: StoredEvent, gen: number): void {
    if (gen !== this.tailGen || this.stopped) return;
    try {
      if (ev.seq <= this.head) {
        // Replayed by the tail (or a recreated stream restarting below H): ignore, but check the epoch.
        void this.checkEpoch();
        return;
      }
      if (ev.seq !== this.head + 1) {
        // The tap skipped sequences (purged while it was down, or the stream changed): nothing may be skipped
        // silently, so every subscription re-checks through the store.
        this.log.warn({ head: this.head, next: ev.seq }, 'live tap skipped sequences');
        const prev = this.head;
        // Head first: the catch-ups started below must reach this event.
        this.head = ev.seq;
        this.ring.clear();
        this.forEachSub((sub) => sub.onTapJump(prev));
        void this.checkEpoch();
      }
      this.head = ev.seq;
      const d = this.toDelivery(ev);
      this.ring.push(d);
      this.metrics.liveEvent?.(ev.seq, ev.time);
      let sent = 0;
      this.index.forEachMatch(ev.subject, (sub) => {
        try {
          sent += sub.onLive(d);
        } catch (err) {
          // A failing sink must not keep the event from the other subscriptions.
          this.log.error({ err, subscription: sub.id, seq: d.seq }, 'live delivery failed');
        }
      });
      if (sent > 0) this.metrics.delivered?.(sent);
    } catch (err) {
      this.log.error({ err, seq: ev.seq }, 'live event dispatch failed');
    }
  }

  /** One Delivery per stored event, shared by every subscription (see stored-delivery.ts). */
  private toDelivery(ev: StoredEvent): Delivery {
    return storedDelivery(ev, encodeCursor({ epoch: this.epoch as string, seq: ev.seq }), this.decoder, (text) =>
      this.log.error(
        { seq: ev.seq, bytes: text.length },
        'stored envelope is not a JSON object; sent as a JSON string',
      ),
    );
  }

  /** Calls fn for every subscription (over a copy: fn may close some); one failing sink does not stop the rest. */
  private forEachSub(fn: (sub: FanoutSubscription) => void): void {
    for (const sub of [...this.subs.values()]) {
      try {
        fn(sub);
      } catch (err) {
        this.log.error({ err, subscription: sub.id }, 'subscription update failed');
      }
    }
  }

  private closeSlow(sink: DeliverySink): void {
    const owner = sink.owner ?? sink;
    if (this.closedSlow.has(owner)) return;
    this.closedSlow.add(owner);
    this.metrics.slowConsumerClosed?.();
    sink.slowConsumer?.();
  }

  private unregister(sub: FanoutSubscription): void {
    for (const p of sub.patterns) this.index.remove(p, sub);
    this.subs.delete(sub.id);
  }
}
