/**
 * The embedded single-node event log: the EventStore port on one SQLite file in DATA_DIR, for
 * running without NATS. Same contract as the JetStream adapter; layout and pragmas in `embedded-schema.ts`.
 *
 * better-sqlite3 is synchronous, so every statement runs on the event loop. The adapter keeps that cheap:
 * appends are group-committed (one transaction per tick, at most MAX_BATCH rows), retention deletes in
 * chunks with a yield between them, and catch-up reads walk the table in bounded seq windows with a yield
 * between windows, so a pattern that matches nothing cannot hold the loop for a whole-table scan.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import Database from 'better-sqlite3';
import type { AppConfig } from '../../config/app-config.js';
import { matchesSubject } from '../../events/pattern.js';
import {
  StoreLockedError,
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
} from '../event-store.port.js';
import type { MetadataStore } from '../metadata.port.js';
import { DB_FILE, PRAGMAS, SCHEMA_SQL, SCHEMA_VERSION, SQL } from './embedded-schema.js';
import { EmbeddedMetadataStore } from './embedded-metadata.adapter.js';
import { subjectPrefilter, type SubjectPrefilter } from './subject-prefilter.js';
import type { DeliveryQueues } from '../delivery-queue.port.js';
import { EmbeddedDeliveryQueues } from './embedded-delivery-queues.js';

export interface EmbeddedStoreLogger {
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
  error(o: object, msg?: string): void;
}

export interface EmbeddedStoreOptions {
  /** Clock for event times and idempotency expiry (tests inject one). */
  now?: () => number;
  /** How often retention runs; default: a quarter of maxAge, between 100 ms and 1 s. */
  retentionIntervalMs?: number;
}

/** Rows per append transaction: bounds how long one commit holds the event loop. */
export const MAX_BATCH = 1000;
/** Rows per retention or catch-up step. */
const CHUNK = 1000;
/**
 * Most seqs one catch-up statement walks. A GLOB scan of 4096 rows took ~1.3 ms on the dev box (1M events of
 * ~300 bytes, warm cache) where the whole million took ~250 ms in one statement.
 */
export const READ_WINDOW = 4096;

interface Pending {
  req: AppendRequest;
  data: Uint8Array;
  resolve: (r: AppendResult) => void;
  reject: (e: Error) => void;
}

interface EventRow {
  seq: number;
  subject: string;
  time: number;
  data: Buffer;
}

interface MetaRow {
  schema_version: number;
  epoch: string;
  last_seq: number;
  total_bytes: number;
}

interface TailState {
  handler: TailHandler;
  /** Next sequence this tail wants. */
  next: number;
  /** False while catching up from the table: live commits are then read back from disk instead. */
  live: boolean;
  stopped: boolean;
}

type Statements = { [K in keyof typeof SQL]: Database.Statement };

const EPOCH_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

function newEpoch(): string {
  let s = '';
  for (let i = 0; i < 12; i++) s += EPOCH_ALPHABET[randomInt(EPOCH_ALPHABET.length)];
  return s;
}

/** better-sqlite3 hands out Buffers; callers get a plain Uint8Array view (as from JetStream), no copy. */
function toEvent(r: EventRow): StoredEvent {
  return {
    seq: r.seq,
    subject: r.subject,
    time: r.time,
    data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength),
  };
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

export class EmbeddedEventStore implements EventStore {
  readonly kind = 'embedded';

  private db: Database.Database | undefined;
  private st: Statements | undefined;
  private epoch = '';
  private lastSeq = 0;
  private totalBytes = 0;
  /** Time of the newest event: event times never go backwards, even if the wall clock does. */
  private lastTime = 0;

  private queue: Pending[] = [];
  private flushScheduled = false;
  private readonly tails = new Set<TailState>();
  private retentionTimer: NodeJS.Timeout | undefined;
  private retentionRunning: Promise<unknown> | undefined;
  /** Set by stop(): a retention pass in progress ends at its next chunk. */
  private stopping = false;

  private readonly now: () => number;
  private readonly retentionIntervalMs: number;
  /** Metadata buckets in the same file, on this connection (the file is locked to it). */
  private readonly meta = new EmbeddedMetadataStore(() => this.db);

  constructor(
    private readonly config: AppConfig,
    private readonly logger: EmbeddedStoreLogger,
    options: EmbeddedStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    const age = config.stream.maxAgeMs;
    this.retentionIntervalMs = options.retentionIntervalMs ?? Math.min(1000, Math.max(100, age > 0 ? age / 4 : 1000));
  }

  private get subjectPrefix(): string {
    return `${this.config.stream.subjectPrefix}.`;
  }

  private get dir(): string {
    return this.config.dataDir;
  }

  async start(): Promise<void> {
    if (this.db) return;
    this.stopping = false;
    let db: Database.Database | undefined;
    try {
      mkdirSync(this.dir, { recursive: true });
      // timeout 0: a held lock is refused at once instead of after better-sqlite3's default 5 s wait.
      db = new Database(join(this.dir, DB_FILE), { timeout: 0 });
      for (const p of PRAGMAS) db.pragma(p);
      const mode = db.pragma('journal_mode', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, expected wal`);
      // A write takes the exclusive lock now (a read would only take a shared one), so a second process fails
      // here at start, not at its first append.
      db.exec('BEGIN IMMEDIATE; COMMIT');
      this.open(db);
    } catch (err) {
      this.db = undefined;
      this.st = undefined;
      db?.close();
      if (isBusy(err)) throw new StoreLockedError(`data directory ${this.dir} is locked by another Hookstream process`);
      if (err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`cannot open the embedded log in ${this.dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.retentionTimer = setInterval(() => void this.runRetention(), this.retentionIntervalMs);
    this.retentionTimer.unref();
    this.logger.info(
      { dataDir: this.dir, epoch: this.epoch, lastSeq: this.lastSeq, bytes: this.totalBytes },
      'embedded event log opened',
    );
  }

  private open(db: Database.Database): void {
    db.exec(SCHEMA_SQL);
    const st = Object.fromEntries(Object.entries(SQL).map(([k, sql]) => [k, db.prepare(sql)])) as Statements;
    let meta = st.readMeta.get() as MetaRow | undefined;
    if (!meta) {
      st.insertMeta.run(SCHEMA_VERSION, newEpoch(), this.now());
      meta = st.readMeta.get() as MetaRow;
    }
    if (meta.schema_version !== SCHEMA_VERSION) {
      throw new StoreUnavailableError(
        `${join(this.dir, DB_FILE)} has layout version ${meta.schema_version}, this build reads ${SCHEMA_VERSION}`,
      );
    }
    const last = st.lastEvent.get() as { seq: number; time: number } | undefined;
    this.db = db;
    this.st = st;
    this.epoch = meta.epoch;
    this.lastSeq = Math.max(meta.last_seq, last?.seq ?? 0);
    this.totalBytes = meta.total_bytes;
    this.lastTime = last?.time ?? 0;
  }

  async stop(): Promise<void> {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.retentionTimer = undefined;
    this.stopping = true;
    await this.retentionRunning?.catch(() => undefined); // it ends at its next chunk
    // Appends already accepted are committed, not dropped.
    while (this.queue.length && this.db) this.flush();
    for (const t of this.tails) t.stopped = true;
    this.tails.clear();
    const db = this.db;
    this.db = undefined;
    this.st = undefined;
    this.failQueue(new StoreUnavailableError('embedded event log is stopped'));
    db?.close(); // checkpoints the WAL and releases the directory lock
  }

  /** Durable per-endpoint delivery positions (outbound webhooks), in tables of the same file. */
  deliveryQueues(): DeliveryQueues {
    this.queues ??= new EmbeddedDeliveryQueues({ db: () => this.db, store: this, now: this.now });
    return this.queues;
  }
  private queues?: DeliveryQueues;

  async isReady(): Promise<boolean> {
    return this.db?.open === true;
  }

  metadata(): MetadataStore {
    return this.meta;
  }

  private statements(): Statements {
    if (!this.st) throw new StoreUnavailableError('embedded event log is not open');
    return this.st;
  }

  // ---- append: group commit ----

  append(req: AppendRequest): Promise<AppendResult> {
    if (!this.db) return Promise.reject(new StoreUnavailableError('embedded event log is not open'));
    if (typeof req?.subject !== 'string' || req.subject.length === 0 || !(req.data instanceof Uint8Array)) {
      return Promise.reject(new TypeError('append needs a subject string and Uint8Array data'));
    }
    // JetStream stores only subjects bound to the stream (`<prefix>.>`); anything else is not stored there either.
    if (!req.subject.startsWith(this.subjectPrefix) || req.subject.length === this.subjectPrefix.length) {
      return Promise.reject(
        new StoreUnavailableError(`subject ${req.subject} is outside the stream's subjects ${this.subjectPrefix}>`),
      );
    }
    return new Promise<AppendResult>((resolve, reject) => {
      // Copied now: the caller may reuse its buffer before the batch commits.
      this.queue.push({ req, data: req.data.slice(), resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private failQueue(err: Error): void {
    const q = this.queue;
    this.queue = [];
    for (const p of q) p.reject(err);
  }

  /** Commits up to MAX_BATCH queued appends in one transaction, then tells tails and callers. */
  private flush(): void {
    this.flushScheduled = false;
    const db = this.db;
    const st = this.st;
    if (!db || !st) return this.failQueue(new StoreUnavailableError('embedded event log is not open'));
    const batch = this.queue.length > MAX_BATCH ? this.queue.splice(0, MAX_BATCH) : this.queue.splice(0);
    if (this.queue.length) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (batch.length === 0) return;

    const now = this.now();
    const time = Math.max(now, this.lastTime);
    const expiresAt = now + this.config.idempotency.ttlMs;
    const results: AppendResult[] = [];
    const stored: StoredEvent[] = [];
    let seq = this.lastSeq;
    let bytes = this.totalBytes;
    try {
      db.transaction(() => {
        const inBatch = new Map<string, number>();
        for (const { req, data } of batch) {
          const key = req.msgId;
          if (key) {
            const prior = inBatch.get(key) ?? (st.findKey.get(key, now) as { seq: number } | undefined)?.seq;
            if (prior !== undefined) {
              results.push({ seq: prior, duplicate: true });
              continue;
            }
          }
          seq++;
          st.insertEvent.run(seq, req.subject, time, data);
          if (key) {
            st.upsertKey.run(key, seq, expiresAt);
            inBatch.set(key, seq);
          }
          bytes += data.byteLength;
          results.push({ seq, duplicate: false });
          stored.push({ seq, subject: req.subject, time, data });
        }
        // Size limit held at every commit (like JetStream's discard-old), so the file never outgrows it by
        // more than one batch; bounded work here, the timer finishes any backlog (e.g. after lowering maxBytes).
        if (this.overBytes(bytes)) bytes -= this.trim(st, now, bytes, MAX_BATCH * 2).bytes;
        st.updateMeta.run(seq, bytes);
      })();
    } catch (err) {
      this.logger.error({ err, events: batch.length }, 'embedded event log: append transaction failed');
      const e = new StoreUnavailableError(`embedded event log write failed: ${(err as Error).message}`, { cause: err });
      for (const p of batch) p.reject(e);
      return;
    }
    this.lastSeq = seq;
    this.totalBytes = bytes;
    if (stored.length) this.lastTime = time;

    for (const t of this.tails) {
      if (!t.live) continue;
      for (const ev of stored) {
        if (t.stopped) break;
        if (ev.seq < t.next) continue;
        t.next = ev.seq + 1;
        this.deliver(t, ev);
      }
    }
    for (let i = 0; i < batch.length; i++) batch[i].resolve(results[i]);
  }

  // ---- retention ----

  private overBytes(bytes: number): boolean {
    const max = this.config.stream.maxBytes;
    return max > 0 && bytes > max;
  }

  /**
   * Deletes the oldest events that are too old or over the size limit, at most `maxRows`, in the caller's
   * transaction. Times never decrease with seq, so the first row that breaks neither limit ends the walk.
   */
  private trim(st: Statements, now: number, bytes: number, maxRows: number): { rows: number; bytes: number } {
    const maxAge = this.config.stream.maxAgeMs;
    const cutoff = maxAge > 0 ? now - maxAge : -Infinity;
    let rows = 0;
    let freed = 0;
    let through = 0;
    for (const r of st.oldest.iterate() as IterableIterator<{ seq: number; time: number; size: number }>) {
      if (rows >= maxRows || (r.time >= cutoff && !this.overBytes(bytes - freed))) break;
      rows++;
      freed += r.size;
      through = r.seq;
    }
    if (rows) st.deleteThrough.run(through);
    return { rows, bytes: freed };
  }

  /**
   * Applies `stream.maxAgeMs` and `stream.maxBytes` (oldest first) and drops expired idempotency keys, in
   * chunks of CHUNK rows with a yield between them. Runs on a timer; public so tests can force it.
   */
  async enforceRetention(nowMs?: number): Promise<{ events: number; idempotencyKeys: number }> {
    // One run at a time; a caller arriving during a timer run waits for it, then runs its own pass.
    while (this.retentionRunning) await this.retentionRunning.catch(() => undefined);
    const run = this.retain(nowMs ?? this.now());
    this.retentionRunning = run;
    try {
      return await run;
    } finally {
      this.retentionRunning = undefined;
    }
  }

  private async retain(now: number): Promise<{ events: number; idempotencyKeys: number }> {
    let events = 0;
    let keys = 0;
    for (;;) {
      const db = this.db;
      const st = this.st;
      if (!db || !st || this.stopping) break;
      const step = db.transaction(() => {
        const t = this.trim(st, now, this.totalBytes, CHUNK);
        if (t.rows) st.updateBytes.run(this.totalBytes - t.bytes);
        const k = st.pruneKeys.run(now, CHUNK).changes;
        return { ...t, keys: k };
      })();
      this.totalBytes -= step.bytes;
      events += step.rows;
      keys += step.keys;
      if (step.rows < CHUNK && step.keys < CHUNK) break;
      await new Promise<void>((r) => setImmediate(r)); // let appends and I/O in between chunks
    }
    return { events, idempotencyKeys: keys };
  }

  private runRetention(): void {
    if (this.retentionRunning || !this.db) return;
    this.enforceRetention().then(
      (r) => {
        if (r.events) this.logger.info({ deleted: r.events }, 'embedded event log: retention removed old events');
      },
      (err: unknown) => this.logger.warn({ err }, 'embedded event log: retention pass failed'),
    );
  }

  /** Deletes every event; the sequence counter and the epoch stay, so readers see a gap (tests, admin). */
  async purge(): Promise<void> {
    const st = this.statements();
    this.db!.transaction(() => {
      st.deleteAll.run();
      st.updateMeta.run(this.lastSeq, 0);
    })();
    this.totalBytes = 0;
  }

  // ---- reads ----

  async state(): Promise<StreamState> {
    const st = this.statements();
    try {
      const first = st.firstSeq.pluck().get() as number | undefined;
      return { epoch: this.epoch, firstSeq: first ?? this.lastSeq + 1, lastSeq: this.lastSeq };
    } catch (err) {
      throw new StoreUnavailableError(`embedded event log read failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async seqAtTime(timeMs: number): Promise<number> {
    const st = this.statements();
    try {
      const seq = st.seqAtTime.pluck().get(timeMs) as number | undefined;
      return seq ?? this.lastSeq + 1;
    } catch (err) {
      throw new StoreUnavailableError(`embedded event log read failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async openReader(opts: ReadOptions): Promise<EventReader> {
    this.statements();
    const tokens = typeof opts.filter === 'string' ? opts.filter.split('.') : [''];
    if (tokens.includes('') || tokens.slice(0, -1).includes('>')) {
      throw new RangeError(`invalid subject pattern: ${JSON.stringify(opts.filter)}`);
    }
    const pre = subjectPrefilter(opts.filter);
    return new EmbeddedReader(opts, {
      rows: (fromSeq, toSeq, limit) => this.readRows(pre, fromSeq, toSeq, limit),
      lastSeq: () => this.lastSeq,
    });
  }

  /** Rows in `[fromSeq, toSeq]` whose subject may match (exact match is the reader's job), at most `limit`. */
  private readRows(pre: SubjectPrefilter, fromSeq: number, toSeq: number, limit: number): EventRow[] {
    const st = this.statements();
    try {
      return (
        pre.kind === 'literal'
          ? st.pageLiteral.all(pre.subject, fromSeq, toSeq, limit)
          : st.pageGlob.all(fromSeq, toSeq, pre.glob, limit)
      ) as EventRow[];
    } catch (err) {
      throw new StoreUnavailableError(`embedded event log read failed: ${(err as Error).message}`, { cause: err });
    }
  }

  // ---- live tail ----

  async tail(fromSeq: number, handler: TailHandler): Promise<Tail> {
    this.statements();
    const t: TailState = { handler, next: Math.max(1, fromSeq), live: false, stopped: false };
    this.tails.add(t);
    // Catch up from the table a page per tick, then go live in the same synchronous step that saw the end,
    // so no commit falls between the two: no gap, no duplicate.
    const step = () => {
      if (t.stopped) return;
      let rows: EventRow[];
      try {
        rows = this.statements().page.all(t.next, CHUNK) as EventRow[];
      } catch (err) {
        this.logger.error({ err }, 'embedded event log: tail catch-up failed; tail stopped');
        t.stopped = true;
        this.tails.delete(t);
        return;
      }
      for (const r of rows) {
        if (t.stopped) return;
        t.next = r.seq + 1;
        this.deliver(t, toEvent(r));
      }
      if (rows.length < CHUNK) t.live = true;
      else setImmediate(step);
    };
    setImmediate(step);
    return {
      stop: async () => {
        t.stopped = true;
        this.tails.delete(t);
      },
    };
  }

  private deliver(t: TailState, ev: StoredEvent): void {
    try {
      t.handler(ev);
    } catch (err) {
      // A throwing subscriber must not break the commit path or other tails.
      this.logger.error({ err, seq: ev.seq }, 'embedded event log: tail handler threw');
    }
  }
}

/** Where a reader's rows come from: a bounded window of candidate rows, and the newest stored seq. */
interface ReaderSource {
  /** Rows in `[fromSeq, toSeq]` that pass the SQL pre-filter, in seq order, at most `limit`. */
  rows(fromSeq: number, toSeq: number, limit: number): EventRow[];
  lastSeq(): number;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Paged catch-up read: walks `[fromSeq, min(untilSeq, newest)]` in windows of READ_WINDOW seqs, pre-filters in
 * SQL, matches exactly in JS. A page is filled across windows with a turn of the event loop between two
 * statements, so ingest and live fan-out run in between however sparse the matches are. The read ends at
 * `untilSeq` (nothing after it is returned) or at the newest event.
 */
class EmbeddedReader implements EventReader {
  private next_: number;
  private done = false;
  private closed = false;

  constructor(
    private readonly opts: ReadOptions,
    private readonly source: ReaderSource,
  ) {
    this.next_ = Math.max(1, Math.floor(opts.fromSeq));
    // Nothing at or after fromSeq is wanted when fromSeq is already past the end point.
    if (this.next_ > opts.untilSeq) this.done = true;
  }

  async next(maxEvents: number): Promise<StoredEvent[]> {
    if (this.closed || this.done || maxEvents <= 0) return [];
    const { filter, untilSeq } = this.opts;
    const out: StoredEvent[] = [];
    for (let windows = 0; out.length < maxEvents; windows++) {
      if (windows > 0) {
        await nextTurn();
        if (this.closed) return [];
      }
      const last = Math.min(untilSeq, this.source.lastSeq());
      if (this.next_ > last) {
        // Past the end point, or the end of the stream as of now: complete unless this call found something.
        if (this.next_ > untilSeq || out.length === 0) this.done = true;
        break;
      }
      const to = Math.min(last, this.next_ + READ_WINDOW - 1);
      const limit = maxEvents - out.length;
      const rows = this.source.rows(this.next_, to, limit);
      for (const r of rows) {
        this.next_ = r.seq + 1;
        if (matchesSubject(filter, r.subject)) out.push(toEvent(r));
      }
      // Fewer rows than asked: the window holds no more candidates.
      if (rows.length < limit) this.next_ = to + 1;
    }
    if (this.next_ > untilSeq) this.done = true;
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
