/**
 * The embedded single-node event log: the EventStore port on one SQLite file in DATA_DIR, for running without NATS.
 * Same contract as the JetStream adapter, and the same shape: a thin facade over its parts, one job each.
 *
 * - embedded-database.ts: the one connection (open, pragmas, directory lock, layout check, epoch) and the counters;
 * - embedded-appender.ts: group-committed appends with their idempotency keys;
 * - embedded-retention.ts: age and size limits, expired keys, purge;
 * - embedded-reader.ts / embedded-tail.ts: windowed catch-up reads and the lookup by time, and live tails;
 * - embedded-read-thread.ts: the worker thread, with its own read-only connection, that catch-up reads run on;
 * - embedded-metadata.adapter.ts: metadata buckets in the same file; layout and pragmas in embedded-schema.ts.
 *
 * better-sqlite3 is synchronous, so every statement runs on the thread that calls it: catch-up reads run on the read
 * thread; everything else runs on the event loop, and each part keeps its statements short (bounded batches, chunks
 * and windows, with a yield between them).
 *
 * A part gets the database from here: `database.connection()` gives the connection and the log's statements now,
 * or throws StoreUnavailableError while the store is stopped; `database.prepared(SQL)` prepares a part's own
 * statements (tables in embedded-schema.ts) once per connection. A new accessor follows metadata(): build its part
 * lazily from `this.database`.
 */
import type { AppConfig } from '../../config/app-config.js';
import type {
  AppendRequest,
  AppendResult,
  EventReader,
  EventStore,
  ReadOptions,
  StreamState,
  Tail,
  TailHandler,
} from '../event-store.port.js';
import { StoreUnavailableError } from '../event-store.port.js';
import type { MetadataStore } from '../metadata.port.js';
import { EmbeddedAppender } from './embedded-appender.js';
import { EmbeddedDatabase } from './embedded-database.js';
import { EmbeddedMetadataStore } from './embedded-metadata.adapter.js';
import type { DeliveryQueues } from '../delivery-queue.port.js';
import { EmbeddedDeliveryQueues } from './embedded-delivery-queues.js';
import { EmbeddedReadThread } from './embedded-read-thread.js';
import { EmbeddedReaders } from './embedded-reader.js';
import { EmbeddedRetention, type RetentionResult } from './embedded-retention.js';
import { EmbeddedTails } from './embedded-tail.js';
import type { EmbeddedStoreLogger } from './embedded-util.js';

export { MAX_BATCH } from './embedded-appender.js';
export { READ_WINDOW } from './embedded-reader.js';
export type { EmbeddedStoreLogger } from './embedded-util.js';

export interface EmbeddedStoreOptions {
  /** Clock for event times and idempotency expiry (tests inject one). */
  now?: () => number;
  /** How often retention runs; default: a quarter of maxAge, between 100 ms and 1 s. */
  retentionIntervalMs?: number;
  /** The read thread's script (tests: a missing one shows the fallback to reads on the event loop). */
  readWorker?: URL;
}

export class EmbeddedEventStore implements EventStore {
  readonly kind = 'embedded';

  private readonly database: EmbeddedDatabase;
  private readonly appender: EmbeddedAppender;
  private readonly retention: EmbeddedRetention;
  private readonly readers: EmbeddedReaders;
  private readonly readThread: EmbeddedReadThread;
  private readonly tails: EmbeddedTails;
  private meta?: EmbeddedMetadataStore;

  constructor(
    private readonly config: AppConfig,
    private readonly logger: EmbeddedStoreLogger,
    options: EmbeddedStoreOptions = {},
  ) {
    const now = options.now ?? Date.now;
    const database = new EmbeddedDatabase(config.dataDir, now);
    this.database = database;
    this.retention = new EmbeddedRetention(config, logger, database, now, options.retentionIntervalMs);
    this.tails = new EmbeddedTails(database, logger);
    this.readThread = new EmbeddedReadThread(database.file, logger, options.readWorker);
    this.readers = new EmbeddedReaders(database, this.readThread);
    this.appender = new EmbeddedAppender({
      config,
      logger,
      database,
      retention: this.retention,
      tails: this.tails,
      now,
    });
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.database.db) return;
    this.database.open();
    this.retention.start();
    // Started now, not at the first catch-up (which would wait for it); never rejects (false: reads stay here).
    void this.readThread.start();
    const { epoch, lastSeq, totalBytes } = this.database;
    this.logger.info({ dataDir: this.config.dataDir, epoch, lastSeq, bytes: totalBytes }, 'embedded event log opened');
  }

  async stop(): Promise<void> {
    await this.retention.stop();
    // The read thread's connection closes first: the writer's close is then the last one, and checkpoints the WAL.
    await this.readThread.stop();
    // Appends already accepted are committed, not dropped.
    this.appender.commitQueued();
    this.tails.stopAll();
    this.database.close();
    this.appender.failQueued(new StoreUnavailableError('embedded event log is stopped'));
  }

  async isReady(): Promise<boolean> {
    return this.database.db?.open === true;
  }

  // ---- port --------------------------------------------------------------------------------------

  append(req: AppendRequest): Promise<AppendResult> {
    return this.appender.append(req);
  }

  // async: the parts throw, and callers expect a rejection, not a throw.
  async state(): Promise<StreamState> {
    return this.database.state();
  }

  async seqAtTime(timeMs: number): Promise<number> {
    return this.readers.seqAtTime(timeMs);
  }

  openReader(opts: ReadOptions): Promise<EventReader> {
    return this.readers.openReader(opts);
  }

  async tail(fromSeq: number, handler: TailHandler): Promise<Tail> {
    return this.tails.start(fromSeq, handler);
  }

  /** Metadata buckets in the same file, on this connection (the file is locked to it). */
  metadata(): MetadataStore {
    this.meta ??= new EmbeddedMetadataStore(this.database);
    return this.meta;
  }

  /** Durable per-endpoint delivery positions (outbound webhooks), in tables of the same file. */
  deliveryQueues(): DeliveryQueues {
    this.queues ??= new EmbeddedDeliveryQueues({ db: () => this.database.db, store: this });
    return this.queues;
  }
  private queues?: DeliveryQueues;

  // ---- embedded only -----------------------------------------------------------------------------

  /**
   * Applies `stream.maxAgeMs` and `stream.maxBytes` (oldest first) and drops expired idempotency keys, in
   * chunks with a yield between them. Runs on a timer; public so tests can force it.
   */
  enforceRetention(nowMs?: number): Promise<RetentionResult> {
    return this.retention.enforce(nowMs);
  }

  /** Deletes every event; the sequence counter and the epoch stay, so readers see a gap (tests, admin). */
  async purge(): Promise<void> {
    this.retention.purge();
  }
}
