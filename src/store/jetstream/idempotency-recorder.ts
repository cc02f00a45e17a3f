/**
 * Writes the JetStream store's idempotency records (hashed msgId → stream seq, in the KV bucket) after the
 * answer has gone out, off the response path.
 *
 * The record only has to follow the PubAck; nothing requires it before the 202. Writing it here
 * saves the ingest path a KV round trip (and its share of the gateway's and nats-server's CPU). The cost,
 * accepted on purpose: a gateway that dies in the few ms between the 202 and the KV write loses the record,
 * and a provider retry of that delivery is then recognised only by Nats-Msg-Id, i.e. inside the stream's
 * `duplicateWindow`; a retry after the window would be stored a second time. Everything else still holds: a
 * retry that races the write lands inside the window (JetStream answers it as a duplicate with the original
 * seq, and that ack is recorded too), and records survive NATS outages here, in memory, retried with backoff.
 *
 * Bounded: at most `maxPending` records wait; past that, new ones are dropped (the events are stored; only
 * their dedupe beyond the window is lost), counted in `stats().dropped` and logged. stop() of the adapter
 * calls drain(): pending records are written before the connection closes, or counted as lost after a timeout.
 */
import type { StoreLogger } from './jetstream-util.js';
import { backoffMs, cancellableDelay, describeError } from './jetstream-util.js';

/** What the recorder writes to: the KV bucket (`KV.put`), or nothing while NATS is unreachable. */
export interface RecordSink {
  put(key: string, value: string): Promise<unknown>;
}

export interface IdempotencyRecorderOptions {
  /** Records waiting at most; default 100 000 (a few MB). */
  maxPending?: number;
  /** Puts issued together at most (one socket write for all of them); default 512. */
  batchSize?: number;
  /** Backoff between failed rounds, first and cap; default 100 ms, 2 s. */
  retryBaseMs?: number;
  retryCapMs?: number;
  /** Told about every failed put (e.g. to re-create a lost bucket). */
  onFailure?: (err: unknown) => void;
}

export interface IdempotencyRecorderStats {
  /** Records not yet confirmed by the bucket (waiting or being written). */
  pending: number;
  written: number;
  /** Records given up on: over `maxPending`, or still unwritten when drain() timed out. */
  dropped: number;
}

const LOG_EVERY_MS = 10_000;

export class IdempotencyRecorder {
  /** key → value; a Map keeps insertion order and holds one record per key. */
  private pending = new Map<string, string>();
  private writing = 0;
  private running = false;
  private closed = false;
  private attempt = 0;
  private sleep?: { cancel: () => void };
  private idleWaiters: (() => void)[] = [];
  private written = 0;
  private dropped = 0;
  private lastDropLog = 0;
  private lastFailLog = 0;
  private readonly maxPending: number;
  private readonly batchSize: number;

  constructor(
    /** The sink now, or undefined while it cannot be written (NATS down): the recorder waits then. */
    private readonly sink: () => RecordSink | undefined,
    private readonly logger: StoreLogger,
    private readonly options: IdempotencyRecorderOptions = {},
  ) {
    this.maxPending = options.maxPending ?? 100_000;
    this.batchSize = options.batchSize ?? 512;
  }

  stats(): IdempotencyRecorderStats {
    return { pending: this.pending.size + this.writing, written: this.written, dropped: this.dropped };
  }

  /** Queues a record; returns at once. Records of one tick are written together. */
  record(key: string, value: string): void {
    if (this.closed || (this.pending.size >= this.maxPending && !this.pending.has(key))) {
      this.dropped++;
      const now = Date.now();
      if (now - this.lastDropLog >= LOG_EVERY_MS) {
        this.lastDropLog = now;
        this.logger.warn(
          { dropped: this.dropped, pending: this.pending.size, closed: this.closed },
          'idempotency records dropped: retries of those deliveries are recognised only inside the duplicate window',
        );
      }
      return;
    }
    this.pending.set(key, value);
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.run());
    }
  }

  /**
   * Resolves once every queued record is written, or after `timeoutMs`; then the recorder is closed and
   * what is left is counted as dropped. Returns how many records were lost.
   */
  async drain(timeoutMs: number): Promise<number> {
    if (this.running) {
      const wait = cancellableDelay(timeoutMs);
      await Promise.race([new Promise<void>((resolve) => this.idleWaiters.push(resolve)), wait.promise]);
      wait.cancel();
    }
    this.closed = true;
    this.sleep?.cancel();
    const lost = this.pending.size + this.writing;
    if (lost) {
      this.dropped += lost;
      this.pending.clear();
      this.logger.error(
        { lost },
        'stopping with idempotency records unwritten: retries of those deliveries are recognised only inside the duplicate window',
      );
    }
    return lost;
  }

  private async run(): Promise<void> {
    try {
      while (this.pending.size && !this.closed) {
        const sink = this.sink();
        if (!sink) {
          await this.backoff();
          continue;
        }
        const batch: [string, string][] = [];
        for (const entry of this.pending) {
          batch.push(entry);
          if (batch.length === this.batchSize) break;
        }
        for (const [key] of batch) this.pending.delete(key);
        this.writing = batch.length;
        // Issued in one synchronous loop: the client sends them in one write.
        const results = await Promise.allSettled(batch.map(([key, value]) => sink.put(key, value)));
        this.writing = 0;
        let failed = 0;
        let firstErr: unknown;
        for (let i = 0; i < results.length; i++) {
          const r = results[i];
          if (r.status === 'fulfilled') {
            this.written++;
            continue;
          }
          failed++;
          firstErr ??= r.reason;
          // Put back unless a newer record for the key arrived meanwhile.
          const [key, value] = batch[i];
          if (!this.pending.has(key)) this.pending.set(key, value);
        }
        if (failed === 0) {
          this.attempt = 0;
          continue;
        }
        this.options.onFailure?.(firstErr);
        const now = Date.now();
        if (now - this.lastFailLog >= LOG_EVERY_MS) {
          this.lastFailLog = now;
          this.logger.warn(
            { failed, pending: this.pending.size, err: describeError(firstErr) },
            'writing idempotency records failed; retrying',
          );
        }
        await this.backoff();
      }
    } finally {
      this.running = false;
      if (this.closed) this.pending.clear(); // already counted as dropped by drain()
      for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private async backoff(): Promise<void> {
    const sleep = cancellableDelay(
      backoffMs(this.attempt++, this.options.retryBaseMs ?? 100, this.options.retryCapMs ?? 2_000),
    );
    this.sleep = sleep;
    await sleep.promise;
    this.sleep = undefined;
  }
}
