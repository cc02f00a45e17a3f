/**
 * Retention on the embedded log: `stream.maxAgeMs` and `stream.maxBytes` (oldest events first), expired
 * idempotency keys, and purge. A timer runs it in chunks with a yield between them, so a large backlog never holds
 * the event loop; the appender also trims a bounded amount at every commit (trim()), so the size limit holds
 * between two timer runs.
 */
import type { AppConfig } from '../../config/app-config.js';
import type { EmbeddedDatabase, Statements } from './embedded-database.js';
import { CHUNK, nextTurn, type EmbeddedStoreLogger } from './embedded-util.js';

export interface RetentionResult {
  events: number;
  idempotencyKeys: number;
}

export class EmbeddedRetention {
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  /** Set by stop(): a pass in progress ends at its next chunk. */
  private stopping = false;

  constructor(
    private readonly config: AppConfig,
    private readonly logger: EmbeddedStoreLogger,
    private readonly database: EmbeddedDatabase,
    private readonly now: () => number,
    /** Default: a quarter of maxAge, between 100 ms and 1 s. */
    intervalMs?: number,
  ) {
    const age = config.stream.maxAgeMs;
    this.intervalMs = intervalMs ?? Math.min(1000, Math.max(100, age > 0 ? age / 4 : 1000));
  }

  /** Starts the timer (the database is open). */
  start(): void {
    this.stopping = false;
    this.timer = setInterval(() => this.runOnTimer(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress, which ends at its next chunk. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping = true;
    await this.running?.catch(() => undefined);
  }

  overBytes(bytes: number): boolean {
    const max = this.config.stream.maxBytes;
    return max > 0 && bytes > max;
  }

  /**
   * Deletes the oldest events that are too old or over the size limit, at most `maxRows`, in the caller's
   * transaction. Times never decrease with seq, so the first row that breaks neither limit ends the walk.
   */
  trim(st: Statements, now: number, bytes: number, maxRows: number): { rows: number; bytes: number } {
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

  /** One pass over everything due, in chunks of CHUNK rows; public on the store so tests can force it. */
  async enforce(nowMs?: number): Promise<RetentionResult> {
    // One run at a time; a caller arriving during a timer run waits for it, then runs its own pass.
    while (this.running) await this.running.catch(() => undefined);
    const run = this.retain(nowMs ?? this.now());
    this.running = run;
    try {
      return await run;
    } finally {
      this.running = undefined;
    }
  }

  /** Deletes every event; the sequence counter and the epoch stay, so readers see a gap (tests, admin). */
  purge(): void {
    const { db, st } = this.database.connection();
    db.transaction(() => {
      st.deleteAll.run();
      st.updateMeta.run(this.database.lastSeq, 0);
    })();
    this.database.totalBytes = 0;
  }

  private async retain(now: number): Promise<RetentionResult> {
    const database = this.database;
    let events = 0;
    let keys = 0;
    for (;;) {
      const c = database.current();
      if (!c || this.stopping) break;
      const { db, st } = c;
      const step = db.transaction(() => {
        const t = this.trim(st, now, database.totalBytes, CHUNK);
        if (t.rows) st.updateBytes.run(database.totalBytes - t.bytes);
        const k = st.pruneKeys.run(now, CHUNK).changes;
        return { ...t, keys: k };
      })();
      database.totalBytes -= step.bytes;
      events += step.rows;
      keys += step.keys;
      if (step.rows < CHUNK && step.keys < CHUNK) break;
      await nextTurn(); // let appends and I/O in between chunks
    }
    return { events, idempotencyKeys: keys };
  }

  private runOnTimer(): void {
    if (this.running || !this.database.db) return;
    this.enforce().then(
      (r) => {
        if (r.events) this.logger.info({ deleted: r.events }, 'embedded event log: retention removed old events');
      },
      (err: unknown) => this.logger.warn({ err }, 'embedded event log: retention pass failed'),
    );
  }
}
