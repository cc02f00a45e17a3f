/**
 * An in-memory EventStore for unit tests of the fan-out, with the knobs the races need: purge (gaps),
 * recreate (new epoch), readers that can be paused, slowed by a hook or made to fail, a tail that can be
 * paused (the hub's live tap falls behind), an unavailable switch, and counters for what was called.
 *
 * Behaviour mirrors the JetStream adapter where it matters: seqs are global and never reused within an epoch;
 * a reader returns only events matching its filter, stops after the first one at or past untilSeq, or at the
 * end of the stream; a tail keeps its next seq across a recreate (like an ordered consumer that resets from
 * its last stream seq + 1), so a recreated stream is only visible through state().
 */
import { matchesSubject } from '../../src/events/pattern.js';
import {
  StoreUnavailableError,
  type AppendRequest,
  type AppendResult,
  type EventReader,
  type EventStore,
  type ReadOptions,
  type StoredEvent,
  type StreamState,
  type Tail,
  type TailHandler,
} from '../../src/store/event-store.port.js';
import type { MetadataStore } from '../../src/store/metadata.port.js';
import { MemoryMetadataStore } from './memory-metadata-store.js';

export interface PageInfo {
  readerId: number;
  /** 0 for the first next() call of that reader. */
  page: number;
  opts: ReadOptions;
}

interface MemTail {
  next: number;
  handler: TailHandler;
  stopped: boolean;
}

const encoder = new TextEncoder();

export class MemoryEventStore implements EventStore {
  readonly kind = 'memory';
  epoch: string;
  /** Stored events of the current epoch, ascending and contiguous (purge removes a prefix). */
  private events: StoredEvent[] = [];
  /** Next seq to assign. */
  private nextSeq = 1;
  private readonly msgIds = new Map<string, number>();
  private readonly tails = new Set<MemTail>();
  private pumping = false;
  private tailPaused = false;
  private available = true;
  private epochCounter = 0;
  private readerCounter = 0;
  private readGate: { promise: Promise<void>; open: () => void } | null = null;
  private readFailures = 0;
  private openFailures = 0;
  /** Kept across recreate(), as KV buckets outlive the event stream; unavailable with the store. */
  private readonly meta = new MemoryMetadataStore(() => this.available);

  /** Clock for StoredEvent.time. */
  now: () => number = () => Date.now();
  /** Called at the start of every reader.next(); may await to slow pages down or interleave appends. */
  beforePage: ((info: PageInfo) => void | Promise<void>) | undefined;

  // Counters for assertions.
  stateCalls = 0;
  openReaderCalls = 0;
  readerCloses = 0;
  readonly openReaders = new Set<number>();
  readonly readerLog: ReadOptions[] = [];

  constructor(opts: { epoch?: string } = {}) {
    this.epoch = opts.epoch ?? 'e1';
  }

  /** Zeroes the call counters and the reader log (e.g. after the hub's start-up reads). */
  resetCounters(): void {
    this.stateCalls = 0;
    this.openReaderCalls = 0;
    this.readerCloses = 0;
    this.readerLog.length = 0;
  }

  // ---- test controls -------------------------------------------------------------------------------------

  /** Appends synchronously (the tail sees it before this returns); returns the seq. */
  add(subject: string, payload: unknown = {}): number {
    const seq = this.nextSeq++;
    const envelope = { specversion: '1.0', id: `m${seq}`, source: '/test', type: subject, data: payload };
    this.events.push({ seq, subject, data: encoder.encode(JSON.stringify(envelope)), time: this.now() });
    this.pump();
    return seq;
  }

  /** Removes every event with seq ≤ throughSeq (retention / purge). */
  purge(throughSeq: number): void {
    const keepFrom = this.events.findIndex((e) => e.seq > throughSeq);
    this.events = keepFrom < 0 ? [] : this.events.slice(keepFrom);
  }

  /** Deletes and recreates the stream: new epoch, seqs restart at 1. */
  recreate(epoch = `r${++this.epochCounter}`): void {
    this.epoch = epoch;
    this.events = [];
    this.nextSeq = 1;
    this.msgIds.clear();
  }

  /** While unavailable every call throws StoreUnavailableError and the tail delivers nothing. */
  setAvailable(available: boolean): void {
    this.available = available;
    if (available) this.pump();
  }

  /** Holds back tail deliveries (the hub's tap lags); resumeTail delivers what was held, in order. */
  pauseTail(): void {
    this.tailPaused = true;
  }

  resumeTail(): void {
    this.tailPaused = false;
    this.pump();
  }

  /** Blocks every reader.next() until resumeReads(). */
  pauseReads(): void {
    if (this.readGate) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.readGate = { promise, open };
  }

  resumeReads(): void {
    const gate = this.readGate;
    this.readGate = null;
    gate?.open();
  }

  /** The next n reader.next() calls reject with StoreUnavailableError. */
  failReads(n: number): void {
    this.readFailures += n;
  }

  /** The next n openReader() calls reject with StoreUnavailableError. */
  failOpens(n: number): void {
    this.openFailures += n;
  }

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** Stored events (current epoch), for computing expectations. */
  stored(): readonly StoredEvent[] {
    return this.events;
  }

  // ---- EventStore ----------------------------------------------------------------------------------------

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    for (const t of this.tails) t.stopped = true;
    this.tails.clear();
  }

  async isReady(): Promise<boolean> {
    return this.available;
  }

  metadata(): MetadataStore {
    return this.meta;
  }

  async append(req: AppendRequest): Promise<AppendResult> {
    this.check();
    const seen = this.msgIds.get(req.msgId);
    if (seen !== undefined) return { seq: seen, duplicate: true };
    const seq = this.nextSeq++;
    this.msgIds.set(req.msgId, seq);
    this.events.push({ seq, subject: req.subject, data: req.data, time: this.now() });
    this.pump();
    return { seq, duplicate: false };
  }

  async state(): Promise<StreamState> {
    this.stateCalls++;
    this.check();
    return this.snapshot();
  }

  snapshot(): StreamState {
    return {
      epoch: this.epoch,
      firstSeq: this.events.length > 0 ? this.events[0].seq : this.nextSeq,
      lastSeq: this.nextSeq - 1,
    };
  }

  async seqAtTime(timeMs: number): Promise<number> {
    this.check();
    const e = this.events.find((ev) => ev.time >= timeMs);
    return e ? e.seq : this.nextSeq;
  }

  async openReader(opts: ReadOptions): Promise<EventReader> {
    this.openReaderCalls++;
    this.check();
    if (this.openFailures > 0) {
      this.openFailures--;
      throw new StoreUnavailableError('openReader failed (injected)');
    }
    this.readerLog.push({ ...opts });
    const readerId = ++this.readerCounter;
    this.openReaders.add(readerId);
    let cursor = opts.fromSeq;
    // An empty range (fromSeq past untilSeq) completes at once, as the adapters' readers do.
    let done = opts.fromSeq > opts.untilSeq;
    let closed = false;
    let page = 0;
    let onClose!: () => void;
    const closedSignal = new Promise<void>((resolve) => (onClose = resolve));
    const whileOpen = (p: Promise<unknown>): Promise<unknown> => Promise.race([p, closedSignal]);
    return {
      next: async (maxEvents: number): Promise<StoredEvent[]> => {
        if (closed) throw new Error('reader closed');
        const info: PageInfo = { readerId, page: page++, opts };
        await whileOpen(Promise.resolve(this.beforePage?.(info)));
        while (this.readGate && !closed) await whileOpen(this.readGate.promise);
        // Closed while this page was pending: like a stopped JetStream fetch, it ends with what it has (nothing).
        if (closed) return [];
        this.check();
        if (this.readFailures > 0) {
          this.readFailures--;
          throw new StoreUnavailableError('read failed (injected)');
        }
        if (done) return [];
        const out: StoredEvent[] = [];
        const start = this.indexFrom(cursor);
        if (start < 0) return out;
        for (let i = start; i < this.events.length && out.length < maxEvents; i++) {
          const ev = this.events[i];
          cursor = ev.seq + 1;
          if (!matchesSubject(opts.filter, ev.subject)) continue;
          out.push(ev);
          if (ev.seq >= opts.untilSeq) {
            done = true;
            break;
          }
        }
        return out;
      },
      close: async (): Promise<void> => {
        if (closed) return;
        closed = true;
        this.readerCloses++;
        this.openReaders.delete(readerId);
        onClose();
      },
    };
  }

  async tail(fromSeq: number, handler: TailHandler): Promise<Tail> {
    this.check();
    const t: MemTail = { next: fromSeq, handler, stopped: false };
    this.tails.add(t);
    this.pump();
    return {
      stop: async () => {
        t.stopped = true;
        this.tails.delete(t);
      },
    };
  }

  // ---- internals -----------------------------------------------------------------------------------------

  /** Index of the first stored event with seq ≥ seq, or -1 (events are contiguous). */
  private indexFrom(seq: number): number {
    if (this.events.length === 0) return -1;
    const i = Math.max(0, seq - this.events[0].seq);
    return i < this.events.length ? i : -1;
  }

  private check(): void {
    if (!this.available) throw new StoreUnavailableError('memory store is unavailable');
  }

  /** Delivers to every tail what it has not seen, in order; not re-entrant (a handler may append). */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      let progressed = true;
      while (progressed && this.available && !this.tailPaused) {
        progressed = false;
        for (const t of this.tails) {
          if (t.stopped) continue;
          const i = this.indexFrom(t.next);
          if (i < 0) continue;
          const ev = this.events[i];
          t.next = ev.seq + 1;
          progressed = true;
          try {
            t.handler(ev);
          } catch {
            // As in the adapters: a throwing handler does not stop the tail.
          }
        }
      }
    } finally {
      this.pumping = false;
    }
  }
}
