/**
 * Catch-up reads on the embedded log, and the lookup by time. A read walks the table in bounded seq windows (one
 * statement each, pre-filtered in SQL, matched exactly here) and keeps windows read ahead of its caller.
 *
 * The statements run on the read thread (embedded-read-thread.ts), on its own read-only connection, so a deep
 * replay's SQLite work runs beside ingest and live fan-out instead of taking turns with them. When that thread is
 * not available they run on the store's connection on the event loop, with a turn of the loop before each one: a
 * pattern that matches nothing still cannot hold the loop for a whole-table scan.
 */
import { matchesSubject } from '../../events/pattern.js';
import type { EventReader, ReadOptions, StoredEvent } from '../event-store.port.js';
import type { EmbeddedDatabase } from './embedded-database.js';
import type { EmbeddedReadThread } from './embedded-read-thread.js';
import { nextTurn, readFailed, toEvent, type EventRow } from './embedded-util.js';
import { subjectPrefilter, type SubjectPrefilter } from './subject-prefilter.js';

/**
 * Most seqs one catch-up statement walks. A GLOB scan of 4096 rows took ~1.3 ms on the dev box (1M events of
 * ~300 bytes, warm cache) where the whole million took ~250 ms in one statement.
 */
export const READ_WINDOW = 4096;
/** Rows a window aims at: windows narrow where events are dense (1,024 events of ~500 bytes: ~0.5 MB). */
const WINDOW_ROWS = 1024;
/** The narrowest window, in seqs. */
const MIN_SPAN = 256;

/** Where a reader's rows come from: a bounded window of candidate rows, and the newest stored seq. */
interface ReaderSource {
  /** Rows in `[fromSeq, toSeq]` that pass the SQL pre-filter, in seq order, at most `limit`. */
  rows(fromSeq: number, toSeq: number, limit: number): Promise<StoredEvent[]>;
  /** The newest stored seq; throws StoreUnavailableError while the store is stopped. */
  lastSeq(): number;
  /** Windows a reader may have in flight: several on the read thread, one on the event loop (a turn each). */
  readonly depth: number;
}

/** Windows one reader keeps in flight on the read thread. */
const THREAD_DEPTH = 3;

/** The read side of one store: readers hold no resources of their own, so there is no registry to close. */
export class EmbeddedReaders {
  constructor(
    private readonly database: EmbeddedDatabase,
    private readonly thread: EmbeddedReadThread,
  ) {}

  async openReader(opts: ReadOptions): Promise<EventReader> {
    this.database.statements();
    const tokens = typeof opts.filter === 'string' ? opts.filter.split('.') : [''];
    if (tokens.includes('') || tokens.slice(0, -1).includes('>')) {
      throw new RangeError(`invalid subject pattern: ${JSON.stringify(opts.filter)}`);
    }
    const pre = subjectPrefilter(opts.filter);
    const threaded = await this.thread.start();
    const lastSeq = () => {
      this.database.statements(); // StoreUnavailableError once the store is stopped
      return this.database.lastSeq;
    };
    const request = pre.kind === 'literal' ? { literal: pre.subject } : { glob: pre.glob };
    return new EmbeddedReader(opts, {
      depth: threaded ? THREAD_DEPTH : 1,
      rows: threaded
        ? (from, to, limit) => this.thread.rows({ from, to, limit, ...request })
        : async (from, to, limit) => {
            await nextTurn();
            return this.readRows(pre, from, to, limit).map(toEvent);
          },
      lastSeq,
    });
  }

  /** The first sequence stored at or after `timeMs`; `lastSeq + 1` if none is. */
  seqAtTime(timeMs: number): number {
    const st = this.database.statements();
    try {
      const seq = st.seqAtTime.pluck().get(timeMs) as number | undefined;
      return seq ?? this.database.lastSeq + 1;
    } catch (err) {
      throw readFailed(err);
    }
  }

  /** Rows in `[fromSeq, toSeq]` whose subject may match (exact match is the reader's job), at most `limit`. */
  private readRows(pre: SubjectPrefilter, fromSeq: number, toSeq: number, limit: number): EventRow[] {
    const st = this.database.statements();
    try {
      return (
        pre.kind === 'literal'
          ? st.pageLiteral.all(pre.subject, fromSeq, toSeq, limit)
          : st.pageGlob.all(fromSeq, toSeq, pre.glob, limit)
      ) as EventRow[];
    } catch (err) {
      throw readFailed(err);
    }
  }
}

/** A window of seqs being read: `[from, to]`, settled with its candidate rows or the statement's failure. */
interface Window {
  from: number;
  to: number;
  settled: Promise<void>;
  rows?: StoredEvent[];
  error?: unknown;
}

/**
 * Paged catch-up read: walks `[fromSeq, min(untilSeq, newest)]` in windows of at most READ_WINDOW seqs,
 * pre-filters in SQL, matches exactly in JS, and hands out pages from what it read. A window holds every
 * candidate row of its seqs, so the next one does not depend on it: up to `source.depth` windows are read
 * ahead while the caller sends its page (on the read thread, the thread runs ahead whenever it gets a core).
 * Windows narrow where events are dense, so one stays near WINDOW_ROWS rows. The read ends at `untilSeq`
 * (nothing after it is returned) or at the newest event: a call that finds nothing more as of now returns an
 * empty page, and the read is complete.
 */
class EmbeddedReader implements EventReader {
  /** The seq the next window starts at. */
  private from: number;
  /** Seqs the next window spans. */
  private span = READ_WINDOW;
  private done = false;
  private closed = false;
  /** Matching events read and not handed out yet; `head` is the first one still to hand out. */
  private queue: StoredEvent[] = [];
  private head = 0;
  /** Windows being read, in seq order. */
  private windows: Window[] = [];
  /** Events the last next() asked for: windows are read ahead only while fewer are queued. */
  private want = 0;

  constructor(
    private readonly opts: ReadOptions,
    private readonly source: ReaderSource,
  ) {
    this.from = Math.max(1, Math.floor(opts.fromSeq));
    // Nothing at or after fromSeq is wanted when fromSeq is already past the end point.
    if (this.from > opts.untilSeq) this.done = true;
  }

  async next(maxEvents: number): Promise<StoredEvent[]> {
    if (this.closed || this.done || maxEvents <= 0) return [];
    this.source.lastSeq(); // a stopped store fails the call, even with events read ahead
    this.want = maxEvents;
    while (this.queue.length - this.head < maxEvents) {
      this.readAhead();
      const w = this.windows[0];
      if (!w) break; // nothing more as of now
      await w.settled;
      if (this.closed) return [];
      if (this.windows[0] !== w) continue;
      this.windows.shift();
      if (w.error !== undefined) {
        // Read this window again on the next call; the windows after it are dropped (never skipped).
        this.windows = [];
        this.from = w.from;
        throw w.error;
      }
      this.take(w.rows ?? []);
    }
    const end = Math.min(this.queue.length, this.head + maxEvents);
    if (end === this.head) {
      // Past the end point, or at the end of the stream as of now: the read is complete.
      this.done = true;
      return [];
    }
    const page = this.head === 0 && end === this.queue.length ? this.queue : this.queue.slice(this.head, end);
    if (end === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else this.head = end;
    // Read on while the caller sends this page.
    this.readAhead();
    return page;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.windows = [];
    this.queue = [];
    this.head = 0;
  }

  /** Queues a window's matching rows, and sizes the next windows by how dense this one was. */
  private take(rows: StoredEvent[]): void {
    const { filter } = this.opts;
    // A window's rows mostly share a few subjects: each run of one subject is matched once.
    let subject: string | undefined;
    let matches = false;
    for (const r of rows) {
      if (r.subject !== subject) {
        subject = r.subject;
        matches = matchesSubject(filter, subject);
      }
      if (matches) this.queue.push(r);
    }
    if (rows.length > WINDOW_ROWS) this.span = Math.max(MIN_SPAN, Math.floor((this.span * WINDOW_ROWS) / rows.length));
    else if (rows.length < WINDOW_ROWS / 2) this.span = Math.min(READ_WINDOW, this.span * 2);
  }

  /** Starts reading windows up to the source's depth, while fewer events than asked for are queued. */
  private readAhead(): void {
    if (this.closed) return;
    let last: number;
    try {
      last = Math.min(this.opts.untilSeq, this.source.lastSeq());
    } catch {
      return; // stopped: the next call says so
    }
    while (
      this.windows.length < this.source.depth &&
      this.from <= last &&
      (this.windows.length === 0 || this.queue.length - this.head < this.want)
    ) {
      const from = this.from;
      const to = Math.min(last, from + this.span - 1);
      this.from = to + 1;
      const w: Window = { from, to, settled: Promise.resolve() };
      // Every candidate row of the window (at most one per seq): the next window starts right after it.
      w.settled = this.source.rows(from, to, to - from + 1).then(
        (rows) => void (w.rows = rows),
        (err: unknown) => void (w.error = err),
      );
      this.windows.push(w);
    }
  }
}
