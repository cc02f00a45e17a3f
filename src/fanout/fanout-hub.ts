/**
 * The per-process fan-out hub: the live tap (one store tail, the ring, the epoch) feeds the subscription
 * registry (routing by pattern, replay slots); each subscription catches up from its start position (ring,
 * else paged store reads) and hands off to live without gap or duplicate. This file resolves where a new
 * subscription starts and wires the parts together. Pure TypeScript over the store port: no Nest, NATS or
 * socket import.
 *
 * Resuming a cursor always asks the stream whether the events after it are retained (a gap is the stream's
 * call, the same on every replica, even when this ring still holds them), but concurrent subscribes share one
 * state() call, and a recent cursor's events come from the ring. While the store is unreachable, a cursor the
 * ring covers is still served (without that check); others get `unavailable`.
 */
import { decodeCursor, encodeCursor, parseStart, type Cursor, type StartPoint } from '../events/cursor.js';
import { coveringPattern } from '../events/pattern.js';
import type { EventStore, StreamState } from '../store/event-store.port.js';
import {
  SubscribeError,
  type DeliverySink,
  type FanoutLogger,
  type FanoutMetrics,
  type GapNotice,
} from './fanout.types.js';
import { LiveTap } from './live-tap.js';
import { SubscriptionRegistry } from './subscription-registry.js';
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

const noopLog: FanoutLogger = { warn: () => undefined, error: () => undefined };

export class FanoutHub {
  private readonly tap: LiveTap;
  private readonly registry: SubscriptionRegistry;
  private readonly core: HubCore;
  private readonly log: FanoutLogger;

  constructor(
    private readonly store: EventStore,
    options: FanoutOptions,
    metrics: FanoutMetrics = {},
    log?: FanoutLogger,
  ) {
    if (!(options.clientBufferEvents >= 1)) throw new RangeError('clientBufferEvents must be at least 1');
    if (!(options.concurrentReplays >= 1)) throw new RangeError('concurrentReplays must be at least 1');
    this.log = log ?? noopLog;
    const perConnection = options.replaysPerConnection ?? options.concurrentReplays;
    if (!(perConnection >= 1)) throw new RangeError('replaysPerConnection must be at least 1');
    const registry = new SubscriptionRegistry(options.concurrentReplays, perConnection, metrics, this.log);
    const pageSize = Math.max(1, options.replayPageSize ?? 512);
    const retryDelayMs = Math.max(1, options.retryDelayMs ?? 100);
    const tap = new LiveTap(
      store,
      { ringEvents: options.ringEvents, pageSize, retryDelayMs, epochCheckMs: options.epochCheckMs ?? 5_000 },
      {
        onEvent: (d) => registry.route(d),
        onJump: (prevHead) => registry.forEach((sub) => sub.onTapJump(prevHead)),
        onNewEpoch: (epoch, firstSeq) => registry.forEach((sub) => sub.onNewEpoch(epoch, firstSeq)),
      },
      metrics,
      this.log,
    );
    this.tap = tap;
    this.registry = registry;
    this.core = {
      head: () => tap.head,
      recent: (seq) => tap.ring.get(seq),
      recentMatching: (after, until, matches) => tap.ring.matching(after, until, matches),
      deliveryFor: (ev) => tap.deliveryFor(ev),
      openReader: (opts) => store.openReader(opts),
      currentState: () => tap.currentState(),
      replays: registry.replays,
      closeSlow: (sink: DeliverySink) => registry.closeSlow(sink),
      unregister: (sub) => registry.remove(sub),
      limits: {
        bufferEvents: options.clientBufferEvents,
        bufferBytes: options.clientBufferBytes ?? Infinity,
        pageSize,
        sliceSeqs: Math.max(1, options.replaySliceSeqs ?? 4096),
        slowConsumerMs: Math.max(0, options.slowConsumerMs ?? 30_000),
        retryDelayMs,
      },
      metrics,
      log: this.log,
    };
  }

  /** Starts the live tap (see LiveTap.start): resolves after its first attempt or a short wait. */
  start(): Promise<void> {
    return this.tap.start();
  }

  async stop(): Promise<void> {
    const tapStopped = this.tap.stop();
    this.registry.forEach((sub) => sub.close());
    await tapStopped;
  }

  /** True while the live tap is running (epoch known, tail started, not stopped). */
  isLive(): boolean {
    return this.tap.isLive();
  }

  get subscriptionCount(): number {
    return this.registry.size;
  }

  stats(): FanoutStats {
    return {
      epoch: this.tap.epoch,
      head: this.tap.head,
      live: this.tap.isLive(),
      subscriptions: this.registry.size,
      ringSize: this.tap.ring.size,
      buffered: this.registry.buffered(),
      replaysActive: this.registry.replays.inUse,
      replaysWaiting: this.registry.replays.waiting,
    };
  }

  /** Catch-up reads running and waiting now: cheap (no walk over the subscriptions), read at every metrics scrape. */
  replays(): { running: number; waiting: number } {
    return { running: this.registry.replays.inUse, waiting: this.registry.replays.waiting };
  }

  /** Introspection of one subscription (tests, debugging). */
  inspect(id: string): SubscriptionDebug | undefined {
    return this.registry.get(id)?.inspect();
  }

  /**
   * Asks the store for its state and adopts a new epoch if the stream was recreated. Runs periodically;
   * callable directly (e.g. by a readiness probe). Store errors are ignored here.
   */
  checkEpoch(): Promise<void> {
    return this.tap.checkEpoch();
  }

  /**
   * Phase 1: validates cursor/from, resolves the start position and registers the subscription (live events
   * are buffered for it from now on). Delivers nothing until `begin()`. Throws SubscribeError.
   */
  async subscribe(req: SubscribeRequest, sink: DeliverySink): Promise<Subscription> {
    const { tap } = this;
    if (tap.stopped) throw new SubscribeError('unavailable', 'the fan-out is stopped');
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
      if (tap.epoch === null) {
        await tap.connect();
        if (tap.epoch === null) throw new SubscribeError('unavailable', 'the event store cannot be read');
      }
      const epoch = tap.epoch;
      let resolved: StartResolution | null;
      try {
        resolved = await this.resolveStart(epoch, cursor, req.cursor, start);
      } catch (err) {
        this.log.warn({ err }, 'subscribe: store read failed');
        throw new SubscribeError('unavailable', 'the event store cannot be read');
      }
      if (tap.stopped) throw new SubscribeError('unavailable', 'the fan-out is stopped');
      if (!resolved || tap.epoch !== epoch) continue;
      // Synchronous from here: register while H is what the resolution saw or later (no await before this).
      const sub = new FanoutSubscription(this.core, this.registry.nextId(), patterns, coveringPattern(patterns), sink, {
        epoch,
        ...resolved,
      });
      this.registry.add(sub);
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
    const { tap } = this;
    if (cursor) {
      // A recent cursor's events come from the ring, but whether they are still retained is the stream's call
      // (the same answer on every replica); concurrent subscribes share that one question.
      const recent = cursor.epoch === epoch && (cursor.seq >= tap.head || tap.ring.covers(cursor.seq));
      let st: StreamState | null;
      try {
        st = await tap.currentState();
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
        return { lastSent: tap.head, gap: null };
      case 'earliest': {
        const st = await tap.currentState();
        if (!st) return null;
        return { lastSent: st.firstSeq - 1, gap: null };
      }
      case 'time': {
        const seq = await this.store.seqAtTime(start.ms);
        return { lastSent: Math.max(0, seq - 1), gap: null };
      }
    }
  }
}
