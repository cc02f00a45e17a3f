/**
 * The event store on NATS JetStream: the EventStore port as a thin facade over its parts, one job each.
 *
 * - jetstream-connection.ts: the one connection (connect loop, status watch, credentials/TLS, max_payload, drain);
 * - jetstream-provisioner.ts: the stream and the idempotency bucket, created or updated on every (re)connect;
 * - jetstream-appender.ts: batched appends with their idempotency lookups and records;
 * - jetstream-reader.ts / jetstream-tail.ts: catch-up reads and live tails, with the registries stop() closes;
 * - jetstream-seq-at-time.ts and jetstream-metadata.adapter.ts: a lookup by time, and KV buckets beside the stream.
 *
 * A part gets the connection from here: `() => this.live()` gives the handles for an operation now (client, manager,
 * bucket) or throws StoreUnavailableError, never waiting on a reconnect; `connection.listen()` tells it of
 * (re)connects and outages. A new accessor follows metadata(): build its part lazily from those.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { AppConfig } from '../../config/app-config.js';
import type { MetadataStore } from '../metadata.port.js';
import {
  StoreUnavailableError,
  type AppendRequest,
  type AppendResult,
  type EventReader,
  type EventStore,
  type ReadOptions,
  type StreamState,
  type Tail,
  type TailHandler,
} from '../event-store.port.js';
import type { IdempotencyRecorderOptions, IdempotencyRecorderStats } from './idempotency-recorder.js';
import { JetStreamAppender } from './jetstream-appender.js';
import { JetStreamConnection } from './jetstream-connection.js';
import type { DeliveryQueues } from '../delivery-queue.port.js';
import { JetStreamDeliveryQueues } from './jetstream-delivery-queues.js';
import { JetStreamMetadataStore } from './jetstream-metadata.adapter.js';
import { JetStreamProvisioner } from './jetstream-provisioner.js';
import { JetStreamReaders } from './jetstream-reader.js';
import { seqAtTime } from './jetstream-seq-at-time.js';
import { JetStreamTails } from './jetstream-tail.js';
import { ADMIN_TIMEOUT_MS, cancellableDelay, type StoreLogger } from './jetstream-util.js';

export type { StoreLogger } from './jetstream-util.js';

export interface JetStreamEventStoreOptions {
  /** How long start() waits for the first connection before resolving anyway; default 5 s. */
  startWaitMs?: number;
  /** The background writer of idempotency records (bounds, backoff). */
  recorder?: IdempotencyRecorderOptions;
  /** How long stop() waits for unwritten idempotency records; default 5 s. */
  recordDrainMs?: number;
}

const RECORD_DRAIN_MS = 5_000;

export class JetStreamEventStore implements EventStore {
  readonly kind = 'jetstream';

  private readonly connection: JetStreamConnection;
  private readonly provisioner: JetStreamProvisioner;
  private readonly appender: JetStreamAppender;
  private readonly readers: JetStreamReaders;
  private readonly tails: JetStreamTails;
  private meta?: JetStreamMetadataStore;
  private started?: Promise<void>;
  private stopped?: Promise<void>;

  constructor(
    private readonly config: AppConfig,
    private readonly logger: StoreLogger,
    private readonly options: JetStreamEventStoreOptions = {},
  ) {
    const connection = new JetStreamConnection(config, logger);
    this.connection = connection;
    this.tails = new JetStreamTails({
      live: () => this.live(),
      epoch: async () => (await this.state()).epoch,
      connected: () => connection.connected,
      stream: this.streamName,
      filter: this.streamFilter,
      logger,
    });
    this.provisioner = new JetStreamProvisioner(config, logger, connection, {
      streamCreated: () => this.tails.recreateAll('stream created'),
    });
    // After the provisioner's listener: on a reconnect the stream is re-ensured, then the tails recreated.
    connection.listen({ reconnected: () => this.tails.recreateAll('reconnected') });
    this.appender = new JetStreamAppender({
      config,
      logger,
      connection,
      provisioner: this.provisioner,
      live: () => this.live(),
      recorder: options.recorder,
    });
    this.readers = new JetStreamReaders(this.streamName, config.stream.subjectPrefix, logger);
  }

  private get streamName(): string {
    return this.config.stream.name;
  }

  /** Every subject of the stream. */
  private get streamFilter(): string {
    return `${this.config.stream.subjectPrefix}.>`;
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  start(): Promise<void> {
    this.started ??= (async () => {
      if (!this.config.nats) throw new Error('JetStreamEventStore needs NATS_URL');
      this.connection.open();
      const wait = cancellableDelay(this.options.startWaitMs ?? 5_000);
      await Promise.race([this.provisioner.firstReady, wait.promise]);
      wait.cancel();
      if (!this.provisioner.provisioned) {
        this.logger.warn(
          { servers: this.config.natsUrl },
          'NATS JetStream not ready yet; still trying in the background',
        );
      }
    })();
    return this.started;
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    // Marks the store stopping at once (live() throws from here on) and ends any backoff.
    const connecting = this.connection.stop();
    this.provisioner.stop();
    await this.tails.stopAll();
    await this.readers.closeAll();
    await connecting;
    // Records are written after the answer: let appends in flight finish, then write what is queued, before
    // the connection goes.
    await this.appender.settle(this.options.recordDrainMs ?? RECORD_DRAIN_MS);
    await this.connection.drain();
  }

  // ---- port --------------------------------------------------------------------------------------

  isReady(): Promise<boolean> {
    return this.provisioner.isReady();
  }

  append(req: AppendRequest): Promise<AppendResult> {
    return this.appender.append(req);
  }

  /** The idempotency recorder's counters (pending, written, dropped). */
  idempotencyRecords(): IdempotencyRecorderStats {
    return this.appender.stats();
  }

  // async: live() throws, and callers expect a rejection, not a throw.
  async state(): Promise<StreamState> {
    return this.provisioner.state(this.live().jsm);
  }

  async seqAtTime(timeMs: number): Promise<number> {
    return seqAtTime(this.live().jsm, this.streamName, this.streamFilter, timeMs);
  }

  async openReader(opts: ReadOptions): Promise<EventReader> {
    const { nc, js, jsm } = this.live();
    return this.readers.openReader({ nc, js, jsm }, opts);
  }

  tail(fromSeq: number, handler: TailHandler): Promise<Tail> {
    return this.tails.start(fromSeq, handler);
  }

  /** KV buckets beside the stream, on this connection: unavailable whenever live() is. */
  metadata(): MetadataStore {
    this.meta ??= new JetStreamMetadataStore({
      js: () => this.live().js,
      streamName: this.streamName,
      replicas: this.config.stream.replicas,
      timeoutMs: ADMIN_TIMEOUT_MS,
    });
    return this.meta;
  }

  /** Durable per-endpoint delivery positions (outbound webhooks): durable pull consumers on the stream. */
  deliveryQueues(): DeliveryQueues {
    this.queues ??= new JetStreamDeliveryQueues({
      live: () => this.live(),
      stream: this.streamName,
      subjectPrefix: this.config.stream.subjectPrefix,
      replicas: this.config.stream.replicas,
    });
    return this.queues;
  }
  private queues?: DeliveryQueues;

  /** The handles for an operation now, or StoreUnavailableError: never wait on a reconnect. */
  private live(): { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; kv: KV } {
    const { connection: c, provisioner: p } = this;
    if (c.stopping) throw new StoreUnavailableError('the store is stopped');
    if (c.payloadProblem)
      throw new StoreUnavailableError(`NATS cannot take this gateway's events: ${c.payloadProblem}`);
    if (!c.nc || !c.connected || !c.js || !p.jsm || !p.kv) {
      throw new StoreUnavailableError('NATS JetStream is not connected');
    }
    return { nc: c.nc, js: c.js, jsm: p.jsm, kv: p.kv };
  }
}
