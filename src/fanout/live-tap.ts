/**
 * The live tap: ONE tail of the store per process, feeding a ring of recent events and whoever routes them
 * (the subscription registry). It owns everything the process knows about the stream: its epoch, the head H
 * (the last seq dispatched), and the ring. Pure TypeScript over the store port: no Nest, NATS or socket import.
 *
 * - At start the ring is warmed with the last `ringEvents` stored events, so resumes right after a deploy are
 *   served from memory too. While the store is unreachable, connecting is retried in the background.
 * - The tail skipping sequences (purged while it was down) is reported as a jump: every subscription then
 *   catches up through the store, whose hole check announces what is really gone.
 * - Stream recreated (new epoch, seen by a state() answer: the periodic check, a subscribe or a catch-up): the
 *   tap drops its ring, tails the new stream from its last seq + 1, and reports the new epoch so every
 *   subscription sends a gap notice and catches up from the new stream's start. Events of the new stream passed
 *   on before the change was noticed carried old-epoch cursors; they are delivered again after the notice
 *   (clients reset their seq mark on a gap).
 */
import { encodeCursor } from '../events/cursor.js';
import type { EventStore, StoredEvent, StreamState, Tail } from '../store/event-store.port.js';
import { delay, SharedCall } from './async-tools.js';
import { fanoutTrace } from './fanout-trace.js';
import type { Delivery, FanoutLogger, FanoutMetrics } from './fanout.types.js';
import { RingBuffer } from './ring-buffer.js';
import { type NotObjectHandler, pageDelivery, storedDelivery } from './stored-delivery.js';

/** Where the tap's events and stream changes go. Called synchronously, in stream order. */
export interface TapListener {
  /** The next live event (already in the ring). Returns how many subscriptions it was sent to. */
  onEvent(d: Delivery): number;
  /** The tail skipped seqs prevHead + 1 … (the next event) - 1: they never arrived live. */
  onJump(prevHead: number): void;
  /** The stream was recreated: a new epoch whose oldest stored seq is firstSeq. */
  onNewEpoch(epoch: string, firstSeq: number): void;
}

export interface LiveTapOptions {
  ringEvents: number;
  /** Events per warm-up read page. */
  pageSize: number;
  /** First retry delay after a failed connect (doubles up to MAX_CONNECT_DELAY_MS). */
  retryDelayMs: number;
  /** Period of the background epoch check; 0 disables it. */
  epochCheckMs: number;
}

export type StateVerdict = 'current' | 'switched' | 'stale';

const START_WAIT_MS = 2_000;
const MAX_CONNECT_DELAY_MS = 5_000;

export class LiveTap {
  readonly ring: RingBuffer;
  private readonly decoder = new TextDecoder();

  private epochValue: string | null = null;
  /** Epochs seen before the current one: a late state() answer naming one of them is ignored. */
  private readonly retired = new Set<string>();
  private headValue = 0;
  private tail: Tail | null = null;
  /** Identifies the current tail; events from a superseded one are ignored. */
  private tailGen = 0;
  private attempt: Promise<boolean> | null = null;
  private connectLooping = false;
  private started = false;
  private stoppedValue = false;
  /** Cuts retry waits short on stop(). */
  private readonly stopping = new AbortController();
  private epochTimer: ReturnType<typeof setInterval> | undefined;
  /** store.state(), shared by concurrent callers (reconnect storms ask it once per round trip, not per client). */
  private readonly streamState: SharedCall<StreamState>;

  constructor(
    private readonly store: EventStore,
    private readonly options: LiveTapOptions,
    private readonly listener: TapListener,
    private readonly metrics: FanoutMetrics,
    private readonly log: FanoutLogger,
  ) {
    this.ring = new RingBuffer(Math.max(0, Math.floor(options.ringEvents)));
    this.streamState = new SharedCall(() => store.state());
  }

  /** The current stream's epoch; null until the store has answered once. */
  get epoch(): string | null {
    return this.epochValue;
  }

  /** Seq of the last event dispatched (H). */
  get head(): number {
    return this.headValue;
  }

  get stopped(): boolean {
    return this.stoppedValue;
  }

  /**
   * Reads state(), remembers the epoch, starts ONE store tail from lastSeq+1, H = lastSeq, and warms the ring
   * with the last `ringEvents` stored events (one read). Keeps retrying in the background while the store is
   * unreachable; resolves after the first attempt (or a short wait), either way.
   */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stoppedValue = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.connect(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, START_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!this.isLive()) void this.connectLoop();
    const every = this.options.epochCheckMs;
    if (every > 0 && !this.stoppedValue) {
      this.epochTimer = setInterval(() => void this.checkEpoch(), every);
      this.epochTimer.unref?.();
    }
  }

  /** Stops the timers and retries at once (synchronously), then waits for the tail to stop. */
  async stop(): Promise<void> {
    this.stoppedValue = true;
    this.stopping.abort();
    clearInterval(this.epochTimer);
    this.epochTimer = undefined;
    const tail = this.tail;
    this.tail = null;
    this.tailGen++;
    if (tail) await tail.stop().catch((err: unknown) => this.log.warn({ err }, 'tail stop failed'));
  }

  /** True while the tap is running (epoch known, tail started, not stopped). */
  isLive(): boolean {
    return !this.stoppedValue && this.epochValue !== null && this.tail !== null;
  }

  /**
   * Asks the store for its state and adopts a new epoch if the stream was recreated. Store errors are
   * ignored here.
   */
  async checkEpoch(): Promise<void> {
    if (this.stoppedValue || this.epochValue === null) return;
    try {
      this.observeState(await this.streamState.get());
    } catch {
      // The store is unreachable: nothing to learn now.
    }
  }

  /**
   * store.state() of the current epoch, shared with concurrent callers (issued after this call, so never older
   * than it); null when the answer named another epoch (adopted if new, ignored if retired).
   */
  async currentState(): Promise<StreamState | null> {
    const st = await this.streamState.get();
    return this.observeState(st) === 'current' ? st : null;
  }

  /**
   * The Delivery for a stored event of the current epoch: the ring's object when it holds that seq, else a page
   * delivery (sent right away and not kept), whose cursor string is made only if a transport asks for it.
   */
  deliveryFor(ev: StoredEvent): Delivery {
    const d = this.ring.get(ev.seq);
    if (d) return d;
    if (!(Number.isSafeInteger(ev.seq) && ev.seq >= 0)) return this.toDelivery(ev); // throws, as encodeCursor does
    return pageDelivery(ev, this.checkedEpoch(), this.decoder, this.onNotObject);
  }

  /** One attempt to learn the epoch (if unknown) and start the tail; concurrent callers share it. */
  connect(): Promise<boolean> {
    if (this.stoppedValue) return Promise.resolve(false);
    if (this.epochValue !== null && this.tail !== null) return Promise.resolve(true);
    if (this.attempt) return this.attempt;
    const p = this.connectOnce();
    this.attempt = p;
    void p.finally(() => {
      if (this.attempt === p) this.attempt = null;
    });
    return p;
  }

  private observeState(st: StreamState): StateVerdict {
    if (st.epoch === this.epochValue) return 'current';
    if (this.retired.has(st.epoch) || this.stoppedValue) return 'stale';
    this.adoptEpoch(st);
    return 'switched';
  }

  /** The stream was recreated: new ring, new tail from its last seq + 1, the listener told. */
  private adoptEpoch(st: StreamState): void {
    this.log.warn(
      { from: this.epochValue, to: st.epoch, firstSeq: st.firstSeq, lastSeq: st.lastSeq },
      'stream epoch changed',
    );
    if (this.epochValue !== null) this.retired.add(this.epochValue);
    this.epochValue = st.epoch;
    this.headValue = st.lastSeq;
    this.ring.clear();
    const tail = this.tail;
    this.tail = null;
    this.tailGen++;
    if (tail) tail.stop().catch((err: unknown) => this.log.warn({ err }, 'old tail stop failed'));
    this.listener.onNewEpoch(st.epoch, st.firstSeq);
    void this.connectLoop();
  }

  private async connectOnce(): Promise<boolean> {
    try {
      if (this.epochValue === null) {
        const st = await this.store.state();
        if (this.stoppedValue) return false;
        if (this.epochValue === null) {
          this.epochValue = st.epoch;
          this.headValue = st.lastSeq;
        }
      }
      if (this.tail === null) {
        const gen = ++this.tailGen;
        const before = this.headValue;
        const tail = await this.store.tail(this.headValue + 1, (ev) => this.onTailEvent(ev, gen));
        if (gen !== this.tailGen || this.stoppedValue) {
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
          const page = await reader.next(this.options.pageSize);
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
    if (gen !== this.tailGen || this.stoppedValue) return;
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

  /** Retries connecting with backoff until the tail runs or the tap stops. One loop at a time. */
  private async connectLoop(): Promise<void> {
    if (this.connectLooping) return;
    this.connectLooping = true;
    try {
      let wait = this.options.retryDelayMs;
      while (!this.stoppedValue && !this.isLive()) {
        if (await this.connect()) break;
        if (this.stoppedValue) break;
        await delay(wait, this.stopping.signal);
        wait = Math.min(wait * 2, MAX_CONNECT_DELAY_MS);
      }
    } finally {
      this.connectLooping = false;
    }
  }

  /** The tail's handler: synchronous, in order (ring, then the listener's routing). */
  private onTailEvent(ev: StoredEvent, gen: number): void {
    if (gen !== this.tailGen || this.stoppedValue) return;
    try {
      if (ev.seq <= this.headValue) {
        // Replayed by the tail (or a recreated stream restarting below H): ignore, but check the epoch.
        void this.checkEpoch();
        return;
      }
      if (ev.seq !== this.headValue + 1) {
        // The tap skipped sequences (purged while it was down, or the stream changed): nothing may be skipped
        // silently, so every subscription re-checks through the store.
        this.log.warn({ head: this.headValue, next: ev.seq }, 'live tap skipped sequences');
        const prev = this.headValue;
        // Head first: the catch-ups started below must reach this event.
        this.headValue = ev.seq;
        this.ring.clear();
        this.listener.onJump(prev);
        void this.checkEpoch();
      }
      this.headValue = ev.seq;
      const d = this.toDelivery(ev);
      this.ring.push(d);
      this.metrics.liveEvent?.(ev.seq, ev.time);
      const traced = fanoutTrace?.arrived(ev.seq, ev.time);
      const sent = this.listener.onEvent(d);
      if (traced) fanoutTrace?.routed(traced);
      if (sent > 0) this.metrics.delivered?.(sent);
    } catch (err) {
      this.log.error({ err, seq: ev.seq }, 'live event dispatch failed');
    }
  }

  /**
   * One Delivery per stored event, shared by every subscription (see stored-delivery.ts). Per event, only the
   * cursor string and the Delivery are made: the epoch is checked once (encodeCursor's rules), and the
   * not-an-object handler is one function. A catch-up page's deliveries are deliveryFor's (pageDelivery).
   */
  private toDelivery(ev: StoredEvent): Delivery {
    const epoch = this.checkedEpoch();
    const cursor =
      Number.isSafeInteger(ev.seq) && ev.seq >= 0 ? `${epoch}_${ev.seq}` : encodeCursor({ epoch, seq: ev.seq });
    return storedDelivery(ev, cursor, this.decoder, this.onNotObject);
  }

  /** The current epoch, checked once against encodeCursor's rules (it throws on an epoch a cursor cannot hold). */
  private checkedEpoch(): string {
    const epoch = this.epochValue as string;
    if (epoch !== this.cursorEpoch) {
      encodeCursor({ epoch, seq: 0 });
      this.cursorEpoch = epoch;
    }
    return epoch;
  }

  /** The epoch toDelivery last checked. */
  private cursorEpoch: string | null = null;

  private readonly onNotObject: NotObjectHandler = (text, seq) =>
    this.log.error({ seq, bytes: text.length }, 'stored envelope is not a JSON object; sent as a JSON string');
}
