/**
 * Catch-up reads on the embedded log, and the lookup by time. A read walks the table in bounded seq windows (one
 * statement each, pre-filtered in SQL, matched exactly here) and keeps one window read ahead of its caller.
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
/** Most rows one statement returns (a window of ~500-byte events is ~1 MB to hand over). */
const WINDOW_ROWS = 2048;

/** Where a reader's rows come from: a bounded window of candidate rows, and the newest stored seq. */
interface ReaderSource {
  /** Rows in `[fromSeq, toSeq]` that pass the SQL pre-filter, in seq order, at most `limit`. */
  rows(fromSeq: number, toSeq: number, limit: number): Promise<StoredEvent[]>;
  /** The newest stored seq; throws StoreUnavailableError while the store is stopped. */
  lastSeq(): number;
}

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

/**
 * Paged catch-up read: walks `[fromSeq, min(untilSeq, newest)]` in windows of READ_WINDOW seqs, pre-filters in
 * SQL, matches exactly in JS, and hands out pages from what it read. One window is read ahead while the caller
 * sends the page it has. The read ends at `untilSeq` (nothing after it is returned) or at the newest event: a
 * call that finds nothing more as of now returns an empty page, and the read is complete.
 */
class EmbeddedReader implements EventReader {
  /** The next seq a window starts at. */
  private from: number;
  private done = false;
  private closed = false;
  /** Matching events read and not handed out yet; `head` is the first one still to hand out. */
  private queue: StoredEvent[] = [];
  private head = 0;
  /** The window being read, if any; it settles without throwing (a failure is kept in `failure`). */
  private reading: Promise<void> | null = null;
  private failure: unknown;

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
    while (this.queue.length - this.head < maxEvents) {
      const reading = (this.reading ??= this.readWindow());
      if (reading) await reading;
      if (this.closed) return [];
      if (this.failure !== undefined) {
        const err = this.failure;
        this.failure = undefined;
        throw err;
      }
      if (!reading) break; // nothing more as of now
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
    // Read the next window while the caller sends this page.
    if (this.queue.length - this.head < maxEvents) this.reading ??= this.readWindow();
    return page;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    this.head = 0;
  }

  /**
   * Starts reading the next window; null when there is none as of now (past the end point or the newest event),
   * or when the store is stopped (then `failure` says so).
   */
  private readWindow(): Promise<void> | null {
    const { filter, untilSeq } = this.opts;
    let last: number;
    try {
      last = Math.min(untilSeq, this.source.lastSeq());
    } catch (err) {
      this.failure = err;
      return null;
    }
    if (this.from > last) return null;
    const from = this.from;
    const to = Math.min(last, from + READ_WINDOW - 1);
    return this.source.rows(from, to, WINDOW_ROWS).then(
      (rows) => {
        this.reading = null;
        if (this.closed) return;
        let next = from;
        for (const r of rows) {
          next = r.seq + 1;
          if (matchesSubject(filter, r.subject)) this.queue.push(r);
        }
        // Fewer rows than asked: the window holds no more candidates.
        this.from = rows.length < WINDOW_ROWS ? to + 1 : next;
      },
      (err: unknown) => {
        this.reading = null;
        this.failure = err;
      },
    );
  }
}
