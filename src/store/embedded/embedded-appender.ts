/**
 * Appends on the embedded log, group-committed: the appends of one event-loop turn go into one transaction (at
 * most MAX_BATCH rows, so one commit bounds how long it holds the loop), with their idempotency keys in the same
 * transaction as the events, so a key is stored exactly when its event is. With `synchronous=FULL` that is one
 * fsync per batch, not per event. After the commit, live tails get the new events, then the callers their answers.
 */
import type { AppConfig } from '../../config/app-config.js';
import { StoreUnavailableError, type AppendRequest, type AppendResult, type StoredEvent } from '../event-store.port.js';
import type { EmbeddedDatabase } from './embedded-database.js';
import type { EmbeddedRetention } from './embedded-retention.js';
import type { EmbeddedTails } from './embedded-tail.js';
import type { EmbeddedStoreLogger } from './embedded-util.js';

/** Rows per append transaction: bounds how long one commit holds the event loop. */
export const MAX_BATCH = 1000;

export interface AppenderDeps {
  config: AppConfig;
  logger: EmbeddedStoreLogger;
  database: EmbeddedDatabase;
  /** Keeps the size limit at every commit. */
  retention: EmbeddedRetention;
  /** Told of every commit's new events. */
  tails: EmbeddedTails;
  now: () => number;
}

interface Pending {
  req: AppendRequest;
  data: Uint8Array;
  resolve: (r: AppendResult) => void;
  reject: (e: Error) => void;
}

export class EmbeddedAppender {
  private queue: Pending[] = [];
  private flushScheduled = false;

  constructor(private readonly deps: AppenderDeps) {}

  private get subjectPrefix(): string {
    return `${this.deps.config.stream.subjectPrefix}.`;
  }

  append(req: AppendRequest): Promise<AppendResult> {
    if (!this.deps.database.db) return Promise.reject(new StoreUnavailableError('embedded event log is not open'));
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

  /** Commits every append already accepted, while the database is still open (the store is stopping). */
  commitQueued(): void {
    while (this.queue.length && this.deps.database.db) this.flush();
  }

  /** Rejects every append still queued (the database is closed). */
  failQueued(err: Error): void {
    const q = this.queue;
    this.queue = [];
    for (const p of q) p.reject(err);
  }

  /** Commits up to MAX_BATCH queued appends in one transaction, then tells tails and callers. */
  private flush(): void {
    this.flushScheduled = false;
    const { config, logger, database, retention, tails } = this.deps;
    const c = database.current();
    if (!c) return this.failQueued(new StoreUnavailableError('embedded event log is not open'));
    const { db, st } = c;
    const batch = this.queue.length > MAX_BATCH ? this.queue.splice(0, MAX_BATCH) : this.queue.splice(0);
    if (this.queue.length) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (batch.length === 0) return;

    const now = this.deps.now();
    const time = Math.max(now, database.lastTime);
    const expiresAt = now + config.idempotency.ttlMs;
    const results: AppendResult[] = [];
    const stored: StoredEvent[] = [];
    let seq = database.lastSeq;
    let bytes = database.totalBytes;
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
        if (retention.overBytes(bytes)) bytes -= retention.trim(st, now, bytes, MAX_BATCH * 2).bytes;
        st.updateMeta.run(seq, bytes);
      })();
    } catch (err) {
      logger.error({ err, events: batch.length }, 'embedded event log: append transaction failed');
      const e = new StoreUnavailableError(`embedded event log write failed: ${(err as Error).message}`, { cause: err });
      for (const p of batch) p.reject(e);
      return;
    }
    database.lastSeq = seq;
    database.totalBytes = bytes;
    if (stored.length) database.lastTime = time;

    tails.committed(stored);
    for (let i = 0; i < batch.length; i++) batch[i].resolve(results[i]);
  }
}
