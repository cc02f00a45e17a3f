/**
 * One subscription's state machine: catch up from the start position (ring or store pages) while live events
 * are held in its hand-off buffer, then flush the buffer and flip to live with no await in between.
 * A slow sink drops the subscription back to catching up, so per-client memory stays bounded and nothing is lost;
 * one that stays behind for the slow-consumer timeout is asked to close. Store reads share the hub's replay
 * slots fairly per connection and give theirs back after each slice while others wait.
 *
 * Positions: `lastSent` is the seq of the last delivery (the client's cursor; deliveries at or below it are
 * dropped as duplicates). `scanned` ≥ lastSent is how far this subscription has examined the stream: every
 * event ≤ scanned was delivered or does not match. While live, everything up to the hub's head is scanned.
 *
 * Longer than the other files on purpose: the live path, the ring replay and the store read all move the same
 * two positions under the same run token (`gen`), and the no-gap/no-duplicate argument is about how they do it
 * together. Split into modules, each would need write access to those positions, and the argument would no
 * longer be readable in one place. What has its own job lives apart: the hand-off buffer (handoff-buffer.ts),
 * the waits and replay slots (async-tools.ts), routing (subscription-registry.ts).
 */
import { encodeCursor } from '../events/cursor.js';
import { subjectMatcher } from '../events/pattern.js';
import type { EventReader, ReadOptions, StoredEvent, StreamState } from '../store/event-store.port.js';
import { delay, type Semaphore, waitDrained } from './async-tools.js';
import type {
  Delivery,
  DeliverySink,
  FanoutLogger,
  FanoutMetrics,
  GapNotice,
  Subscription,
  SubscriptionDebug,
  SubscriptionMode,
} from './fanout.types.js';
import { HandoffBuffer } from './handoff-buffer.js';

export type { Subscription, SubscriptionDebug, SubscriptionMode } from './fanout.types.js';

/** Bounds and timings of one subscription, from the hub's options. */
export interface SubscriptionLimits {
  /** Most live events held in the hand-off buffer; a sink backlog this long counts as behind. */
  readonly bufferEvents: number;
  /** Byte budget of one connection's sink backlog, and of one subscription's hand-off buffer. */
  readonly bufferBytes: number;
  /** Events per store page. */
  readonly pageSize: number;
  /** Seqs a store read may advance while others wait for a replay slot, before it gives the slot back. */
  readonly sliceSeqs: number;
  /** How long a sink may stay behind before its connection is asked to close; 0: never. */
  readonly slowConsumerMs: number;
  /** First retry delay after a failed store read (doubles up to MAX_RETRY_DELAY_MS). */
  readonly retryDelayMs: number;
}

/** The replay slots store reads share, fairly per client connection. */
export type ReplaySlots = Pick<Semaphore, 'acquire' | 'waiting'>;

/** What a subscription needs from its hub: the stream as the live tap sees it, replay slots, and its exits. */
export interface HubCore {
  /** Seq of the last event the live tap dispatched (H). */
  head(): number;
  /** The ring's delivery for seq, when the ring still holds it. */
  recent(seq: number): Delivery | undefined;
  /** The ring's deliveries in (after, until] whose subject matches, in order; null: scan with recent() instead. */
  recentMatching(after: number, until: number, matches: (subject: string) => boolean): Delivery[] | null;
  /** A Delivery for a stored event of the current epoch (the ring's object when it holds that seq). */
  deliveryFor(ev: StoredEvent): Delivery;
  openReader(opts: ReadOptions): Promise<EventReader>;
  /**
   * store.state() when it names the current epoch (issued after this call, so never older than it); null when
   * it names another (a new epoch is adopted first, resetting every subscription; a retired one is ignored).
   */
  currentState(): Promise<StreamState | null>;
  readonly replays: ReplaySlots;
  /** Asks the sink's connection to close as a slow consumer (once per connection). */
  closeSlow(sink: DeliverySink): void;
  unregister(sub: FanoutSubscription): void;
  readonly limits: SubscriptionLimits;
  readonly metrics: FanoutMetrics;
  readonly log: FanoutLogger;
}

const MAX_RETRY_DELAY_MS = 5_000;
/** How long a store read keeps its reader and slot for a sink that is just behind, before giving them back. */
const DRAIN_HOLD_MS = 1_000;

export class FanoutSubscription implements Subscription {
  readonly startCursor: string;
  private epoch: string;
  private lastSent: number;
  private scanned: number;
  private mode: SubscriptionMode = 'pending';
  private lagging = false;
  /** Live events after buffer.from, held while catching up. */
  private readonly buffer: HandoffBuffer;
  /** Run token: bumped whenever a catch-up run is superseded (close, new epoch, tail jump). */
  private gen = 0;
  private abort: AbortController | null = null;
  private reader: EventReader | null = null;
  private pendingGap: GapNotice | null;
  /** The connection the sink writes to: replay slots are shared fairly per connection. */
  private readonly owner: object;
  /** Whether a subject matches one of the patterns (tested for every event a catch-up scans). */
  private readonly matches: (subject: string) => boolean;

  constructor(
    private readonly core: HubCore,
    readonly id: string,
    readonly patterns: readonly string[],
    /** The one store-side filter covering all patterns (may be wider: pages are matched exactly here). */
    private readonly filter: string,
    private readonly sink: DeliverySink,
    start: { epoch: string; lastSent: number; gap: GapNotice | null },
  ) {
    this.epoch = start.epoch;
    this.lastSent = start.lastSent;
    this.scanned = start.lastSent;
    this.pendingGap = start.gap;
    this.owner = sink.owner ?? sink;
    this.matches = subjectMatcher(patterns);
    // Registered now: every live event after the current head reaches us (buffer or sink).
    this.buffer = new HandoffBuffer(core.limits.bufferEvents, core.limits.bufferBytes, core.head());
    this.startCursor = encodeCursor({ epoch: this.epoch, seq: this.lastSent });
  }

  get cursor(): string {
    return encodeCursor({ epoch: this.epoch, seq: this.lastSent });
  }

  inspect(): SubscriptionDebug {
    return {
      mode: this.mode,
      lagging: this.lagging,
      buffered: this.buffer.length,
      lastSent: this.lastSent,
      scanned: this.scanned,
      readerOpen: this.reader !== null,
    };
  }

  begin(): void {
    if (this.mode !== 'pending') return;
    this.mode = 'catchup';
    if (this.pendingGap) {
      const notice = this.pendingGap;
      this.pendingGap = null;
      this.emitGap(notice);
    }
    this.startRun();
  }

  close(): void {
    if (this.mode === 'closed') return;
    this.mode = 'closed';
    this.stopRun();
    this.buffer.drop();
    this.core.unregister(this);
  }

  /** Hub → one live event whose subject matches one of our patterns. Returns 1 if it was sent. */
  onLive(d: Delivery): number {
    switch (this.mode) {
      case 'live':
        if (d.seq <= this.lastSent) return 0;
        if (this.behind()) {
          // Slow consumer: stop taking live events; catch up from here once the sink drains.
          this.lagging = true;
          this.mode = 'catchup';
          this.buffer.drop();
          this.scanned = Math.max(this.scanned, d.seq - 1);
          this.core.metrics.slowConsumer?.();
          this.startRun();
          return 0;
        }
        return this.deliver(d) ? 1 : 0;
      case 'pending':
      case 'catchup': {
        // Past its bounds the buffer forgets everything; the catch-up then extends to the head (see runCatchup).
        if (this.buffer.active && d.seq > this.lastSent) this.buffer.hold(d);
        return 0;
      }
      default:
        return 0;
    }
  }

  /**
   * The live tap skipped sequences (prevHead + 1 … next - 1 never arrived): the buffer and the live view can
   * no longer be trusted, so catch up through the store, whose gap check announces what is really gone.
   */
  onTapJump(prevHead: number): void {
    if (this.mode === 'closed') return;
    this.buffer.drop();
    if (this.mode === 'live') {
      this.scanned = Math.max(this.scanned, prevHead);
      this.lagging = true;
      this.mode = 'catchup';
      this.startRun();
    }
  }

  /** The stream was recreated: announce a gap from where we are and continue from the new stream's start. */
  onNewEpoch(epoch: string, firstSeq: number): void {
    if (this.mode === 'closed') return;
    const resume = firstSeq - 1;
    const notice: GapNotice = {
      from: this.pendingGap?.from ?? this.cursor,
      resumeCursor: encodeCursor({ epoch, seq: resume }),
    };
    this.stopRun();
    this.epoch = epoch;
    this.lastSent = resume;
    this.scanned = resume;
    this.buffer.drop();
    if (this.mode === 'pending') {
      this.pendingGap = notice;
      return;
    }
    this.mode = 'catchup';
    this.emitGap(notice);
    this.startRun();
  }

  /** The sink holds as many deliveries, or as many bytes, as one client may have queued. */
  private behind(): boolean {
    return this.sink.backlog() >= this.core.limits.bufferEvents || this.overBytes();
  }

  private overBytes(): boolean {
    return (this.sink.backlogBytes?.() ?? 0) >= this.core.limits.bufferBytes;
  }

  /**
   * Waits until the sink drains. A sink still behind after the slow-consumer timeout gets its connection
   * closed (the client resumes by cursor); the wait goes on until that close stops this run.
   */
  private async awaitDrain(gen: number, signal: AbortSignal): Promise<void> {
    const { core } = this;
    const { slowConsumerMs } = core.limits;
    if (slowConsumerMs <= 0) {
      await waitDrained(this.sink, signal);
      return;
    }
    const drained = await waitDrained(this.sink, signal, slowConsumerMs);
    if (drained || this.stale(gen) || !this.behind()) return;
    core.closeSlow(this.sink);
    await waitDrained(this.sink, signal);
  }

  private emitGap(notice: GapNotice): void {
    this.sink.gap(notice);
    this.core.metrics.gap?.();
  }

  /** The only place deliveries are sent: drops duplicates and only moves lastSent forward. */
  private deliver(d: Delivery): boolean {
    if (d.seq <= this.lastSent) return false;
    this.sink.send(d);
    this.lastSent = d.seq;
    if (d.seq > this.scanned) this.scanned = d.seq;
    return true;
  }

  private startRun(): void {
    this.stopRun();
    const gen = this.gen;
    const abort = new AbortController();
    this.abort = abort;
    this.runCatchup(gen, abort.signal).catch((err: unknown) => {
      this.core.log.error({ err, subscription: this.id }, 'catch-up loop failed');
    });
  }

  private stopRun(): void {
    this.gen++;
    this.abort?.abort();
    this.abort = null;
    const reader = this.reader;
    this.reader = null;
    if (reader) this.closeReader(reader);
  }

  private closeReader(reader: EventReader): void {
    reader.close().catch((err: unknown) => this.core.log.warn({ err, subscription: this.id }, 'reader close failed'));
  }

  private stale(gen: number): boolean {
    return gen !== this.gen;
  }

  private async runCatchup(gen: number, signal: AbortSignal): Promise<void> {
    const { core } = this;
    let retryDelay = core.limits.retryDelayMs;
    while (!this.stale(gen)) {
      if (this.behind()) {
        await this.awaitDrain(gen, signal);
        continue;
      }
      // (Re)start buffering at the current head: the catch-up must now reach it.
      if (!this.buffer.active) this.buffer.restart(core.head());
      const target = this.buffer.from;
      if (this.scanned >= target) {
        this.flip();
        return;
      }
      if (this.replayFromRing(target)) continue;
      try {
        await this.readFromStore(gen, signal, target);
        retryDelay = core.limits.retryDelayMs;
      } catch (err) {
        if (this.stale(gen)) return;
        core.log.warn({ err, subscription: this.id, after: this.scanned }, 'catch-up read failed; retrying');
        await delay(retryDelay, signal);
        retryDelay = Math.min(retryDelay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  /**
   * Flush the buffer and go live in one synchronous step: an await here would let a live event pass between
   * the last buffered delivery and the switch, and it would be lost or sent out of order.
   */
  private flip(): void {
    const buffered = this.buffer.take();
    let n = 0;
    this.corked(() => {
      for (const d of buffered) if (this.deliver(d)) n++;
    });
    this.mode = 'live';
    this.lagging = false;
    this.abort = null;
    if (n > 0) this.core.metrics.delivered?.(n);
  }

  /** Runs `send` with the sink corked: what it delivers goes out as one batch (a catch-up page, a flushed buffer). */
  private corked(send: () => void): void {
    this.sink.cork?.();
    try {
      send();
    } finally {
      this.sink.uncork?.();
    }
  }

  /**
   * Synchronous replay of (scanned, target] from the ring, stopping early when the sink's backlog reaches the
   * bound. False if the ring does not hold what was needed (then the store is read instead).
   */
  private replayFromRing(target: number): boolean {
    const { core } = this;
    if (!core.recent(this.scanned + 1)) return false;
    let n = 0;
    let ok = true;
    const mine = core.recentMatching(this.scanned, target, this.matches);
    if (mine) {
      // The ring's entries of our subjects only: everything between them does not match.
      this.corked(() => {
        for (const d of mine) {
          if (this.behind()) {
            this.scanned = Math.max(this.scanned, d.seq - 1);
            return;
          }
          if (this.deliver(d)) n++;
          this.scanned = d.seq;
        }
        if (this.scanned < target) this.scanned = target;
      });
      this.countReplayed(n);
      return true;
    }
    this.corked(() => {
      while (this.scanned < target) {
        const d = core.recent(this.scanned + 1);
        if (!d) {
          ok = false;
          break;
        }
        if (this.matches(d.subject)) {
          if (this.behind()) break;
          if (this.deliver(d)) n++;
        }
        this.scanned = d.seq;
      }
    });
    this.countReplayed(n);
    return ok;
  }

  private countReplayed(n: number): void {
    if (n === 0) return;
    this.core.metrics.delivered?.(n);
    this.core.metrics.replayed?.(n);
  }

  /** Sends a gap notice from our cursor and moves past the events that are gone (up to and including resume). */
  private announceGap(resume: number): void {
    this.emitGap({ from: this.cursor, resumeCursor: encodeCursor({ epoch: this.epoch, seq: resume }) });
    if (resume > this.lastSent) this.lastSent = resume;
    if (resume > this.scanned) this.scanned = resume;
  }

  /** The store's state, if it is still of our epoch and this run is current; null otherwise (we were reset). */
  private async freshState(gen: number): Promise<StreamState | null> {
    const st = await this.core.currentState();
    if (this.stale(gen)) return null; // closed, or restarted by onNewEpoch (a new epoch was adopted)
    if (!st) throw new Error('store answered with a retired epoch');
    return st;
  }

  /**
   * One store read of (scanned, target] under the replay semaphore; the reader is always closed.
   *
   * Gap check: seqs a page skips are either filtered out or gone (retention, purge: before the read or while
   * it runs). Only then is the stream's state read; when its oldest event is past such a hole, the hole is
   * announced as a gap (conservatively: the lost events may not have matched), never jumped over silently.
   * Events gone right after our position thus show up as a hole at the start of the first page.
   *
   * Fairness: the slot is acquired for this subscription's connection (capped per connection, shared
   * round-robin), and once the read has advanced `sliceSeqs` while others wait, it ends early: runCatchup
   * queues again for the rest, behind them. A read that had to wait for its slot (others contend) ends at its
   * slice's end (`until`) in the store itself, so a scan that matches little cannot keep the slot for long
   * either. A page stops early when the sink reaches its byte budget; the rest is read again once it drains.
   */
  private async readFromStore(gen: number, signal: AbortSignal, target: number): Promise<void> {
    const { core } = this;
    const release = await core.replays.acquire(signal, this.owner);
    if (!release) return;
    const sliceEnd = this.scanned + core.limits.sliceSeqs;
    const until = release.waited ? Math.min(target, sliceEnd) : target;
    let reader: EventReader | null = null;
    let handedOver = false;
    try {
      if (this.stale(gen)) return;
      reader = await core.openReader({ fromSeq: this.scanned + 1, filter: this.filter, untilSeq: until });
      if (this.stale(gen)) return;
      this.reader = reader;
      handedOver = true;
      for (;;) {
        if (this.behind()) {
          // Keep the reader briefly for a client that is just behind; give the slot back to one that stalls.
          const drained = await waitDrained(this.sink, signal, DRAIN_HOLD_MS);
          if (this.stale(gen) || !drained) return;
        }
        const page = await reader.next(core.limits.pageSize);
        if (this.stale(gen)) return;
        let firstSeq = 0;
        if (hasHole(page, this.scanned, until)) {
          const now = await this.freshState(gen);
          if (!now || this.stale(gen)) return;
          firstSeq = now.firstSeq;
        }
        if (page.length === 0) {
          // The read ended at `until` (the end of the stream is at or past the target). What is gone is gone
          // up to the target, whatever part of it this read covered.
          if (this.scanned + 1 < firstSeq) this.announceGap(Math.min(firstSeq - 1, target));
          if (this.scanned < until) this.scanned = until;
          return;
        }
        let n = 0;
        let done = false;
        let stopped = false;
        this.corked(() => {
          for (const ev of page) {
            if (ev.seq <= this.scanned) continue;
            if (this.overBytes()) {
              stopped = true;
              break;
            }
            if (ev.seq > this.scanned + 1 && this.scanned + 1 < firstSeq)
              this.announceGap(Math.min(ev.seq, firstSeq) - 1);
            if (this.matches(ev.subject) && this.deliver(core.deliveryFor(ev))) n++;
            this.scanned = ev.seq;
            if (ev.seq >= until) {
              done = true;
              break;
            }
          }
        });
        this.countReplayed(n);
        if (done || stopped) return;
        if (this.scanned >= sliceEnd && core.replays.waiting > 0) return;
      }
    } finally {
      // A reader handed over to this.reader and since taken by stopRun() was closed there already.
      if (reader && (!handedOver || this.reader === reader)) {
        if (this.reader === reader) this.reader = null;
        this.closeReader(reader);
      }
      release();
    }
  }
}

/** Whether a page skips seqs after `after` (an empty page ending the read short of the target counts). */
function hasHole(page: readonly StoredEvent[], after: number, target: number): boolean {
  if (page.length === 0) return after < target;
  let prev = after;
  for (const ev of page) {
    if (ev.seq <= prev) continue;
    if (ev.seq !== prev + 1) return true;
    prev = ev.seq;
    if (ev.seq >= target) return false;
  }
  return false;
}
