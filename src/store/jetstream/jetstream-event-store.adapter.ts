/**
 * The event store on NATS JetStream (DESIGN.md §1, nats-nest-notes.md §2–§4).
 *
 * - One connection, reconnecting forever; every status change is logged. start() never hangs on a NATS
 *   that is down: it waits a short while for the first connection, then keeps trying in the background.
 * - The stream is created or updated on every (re)connect, so a server that lost its store gets it back
 *   (with a new epoch).
 * - Idempotency: Nats-Msg-Id covers concurrent retries inside the duplicate window; a KV bucket with the
 *   idempotency TTL, written after the PubAck, covers provider retries that come days later. The KV record
 *   is written by a background recorder after the answer (see idempotency-recorder.ts for the trade-off).
 * - Appends of one event-loop turn are issued together (KV lookups in one socket write, their publishes in
 *   the next): the per-request socket writes to NATS were the largest single cost in the ingest profile.
 */
import { hostname } from 'node:os';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
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
import {
  IdempotencyRecorder,
  type IdempotencyRecorderOptions,
  type IdempotencyRecorderStats,
} from './idempotency-recorder.js';
import { JsRequester } from './js-requester.js';
import type { DeliveryQueues } from '../delivery-queue.port.js';
import { JetStreamDeliveryQueues } from './jetstream-delivery-queues.js';
import { JetStreamMetadataStore } from './jetstream-metadata.adapter.js';
import { JetStreamReader } from './jetstream-reader.js';
import { JetStreamTail } from './jetstream-tail.js';
import {
  backoffMs,
  cancellableDelay,
  describeError,
  idempotencyKey,
  nanos,
  streamStateOf,
  unavailable,
  withTimeout,
  type StoreLogger,
} from './jetstream-util.js';
import { isStreamSubject, narrowFilter } from './subject-filter.js';

export type { StoreLogger } from './jetstream-util.js';

export interface JetStreamEventStoreOptions {
  /** How long start() waits for the first connection before resolving anyway; default 5 s. */
  startWaitMs?: number;
  /** The background writer of idempotency records (bounds, backoff). */
  recorder?: IdempotencyRecorderOptions;
  /** How long stop() waits for unwritten idempotency records; default 5 s. */
  recordDrainMs?: number;
}

const READY_TIMEOUT_MS = 1_000;
const ADMIN_TIMEOUT_MS = 5_000;
const DRAIN_TIMEOUT_MS = 5_000;

/** The stream as DESIGN.md §2 configures it (2.9-compatible keys only). */
export function streamConfigFor(config: AppConfig): Partial<StreamConfig> & { name: string } {
  const s = config.stream;
  return {
    name: s.name,
    subjects: [`${s.subjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: nanos(s.maxAgeMs),
    max_bytes: s.maxBytes,
    num_replicas: s.replicas,
    duplicate_window: nanos(s.duplicateWindowMs),
    allow_direct: true,
  };
}

const encoder = new TextEncoder();

function isNoResponders(err: unknown): boolean {
  return err instanceof Error && /no responders|not enabled/i.test(err.message);
}

function isStreamNotFound(err: unknown): boolean {
  return (
    (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) ||
    (err instanceof Error && err.message === 'stream not found')
  );
}

export class JetStreamEventStore implements EventStore {
  readonly kind = 'jetstream';

  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private jsm?: JetStreamManager;
  private kv?: KV;
  /** Request–reply for the append path (js-requester.ts); one per connection. */
  private requester?: JsRequester;
  /** The bucket allows direct gets (buckets made by Kvm.create do); else lookups go through `kv.get`. */
  private kvDirect = false;
  private connected = false;
  private streamEnsured = false;
  private stopping = false;
  private started?: Promise<void>;
  private stopped?: Promise<void>;
  private connecting?: Promise<void>;
  private ensuring?: Promise<void>;
  private connectSleep?: { cancel: () => void };
  private ensureSleep?: { cancel: () => void };
  private readonly tails = new Set<JetStreamTail>();
  private readonly recorder: IdempotencyRecorder;
  /** Appends between their start and their answer; stop() lets them finish before draining the recorder. */
  private appending = 0;
  private appendsIdle: (() => void)[] = [];
  /** Resolves on the next check phase: appends started in one event-loop turn go out together. */
  private turn?: Promise<void>;
  private readonly readers = new Set<EventReader>();
  private markFirstReady!: () => void;
  private readonly firstReady = new Promise<void>((resolve) => (this.markFirstReady = resolve));
  private meta?: JetStreamMetadataStore;

  constructor(
    private readonly config: AppConfig,
    private readonly logger: StoreLogger,
    private readonly options: JetStreamEventStoreOptions = {},
  ) {
    const sink = {
      put: (key: string, value: string) =>
        this.requester!.publish(
          `$KV.${this.bucketName}.${key}`,
          encoder.encode(value),
          undefined,
          this.config.ingest.publishTimeoutMs,
        ),
    };
    this.recorder = new IdempotencyRecorder(
      () => (this.connected && this.kv && this.requester ? sink : undefined),
      logger,
      {
        ...options.recorder,
        onFailure: (err) => {
          if (isNoResponders(err)) void this.ensure(); // e.g. the bucket was deleted
        },
      },
    );
  }

  /** The idempotency recorder's counters (pending, written, dropped). */
  idempotencyRecords(): IdempotencyRecorderStats {
    return this.recorder.stats();
  }

  private get streamName(): string {
    return this.config.stream.name;
  }

  private get bucketName(): string {
    return `${this.config.stream.name}_idem`;
  }

  // ---- lifecycle ---------------------------------------------------------------------------------

  start(): Promise<void> {
    this.started ??= (async () => {
      if (!this.config.natsUrl) throw new Error('JetStreamEventStore needs NATS_URL');
      this.connecting = this.connectLoop();
      const wait = cancellableDelay(this.options.startWaitMs ?? 5_000);
      await Promise.race([this.firstReady, wait.promise]);
      wait.cancel();
      if (!this.streamEnsured) {
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
    this.stopping = true;
    this.connectSleep?.cancel();
    this.ensureSleep?.cancel();
    await Promise.allSettled([...this.tails].map((t) => t.stop()));
    await Promise.allSettled([...this.readers].map((r) => r.close()));
    await this.connecting?.catch(() => undefined);
    // Records are written after the answer: let appends in flight finish, then write what is queued, before
    // the connection goes.
    const drainMs = this.options.recordDrainMs ?? DRAIN_TIMEOUT_MS;
    const drainStarted = Date.now();
    if (this.appending > 0) {
      const wait = cancellableDelay(drainMs);
      await Promise.race([new Promise<void>((resolve) => this.appendsIdle.push(resolve)), wait.promise]);
      wait.cancel();
    }
    await this.recorder.drain(Math.max(0, drainMs - (Date.now() - drainStarted)));
    this.requester?.close();
    const nc = this.nc;
    if (!nc || nc.isClosed()) return;
    try {
      if (this.connected) await withTimeout(nc.drain(), DRAIN_TIMEOUT_MS, 'NATS drain');
      else await nc.close();
    } catch (err) {
      this.logger.warn({ err: describeError(err) }, 'NATS drain failed; closing');
      await nc.close().catch(() => undefined);
    }
    this.connected = false;
  }

  /**
   * Own first-connect loop instead of the client's `waitOnFirstConnect`: that one cannot be cancelled,
   * so stop() during an outage at boot would leave it dialling forever. After the first connection the
   * client reconnects by itself, forever (`maxReconnectAttempts: -1`, pitfall 4).
   */
  private async connectLoop(): Promise<void> {
    const servers = this.config
      .natsUrl!.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        const nc = await connect({
          servers,
          name: `hookstream-${hostname()}-${process.pid}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1_000,
          reconnectJitter: 500,
          pingInterval: 15_000,
          maxPingOut: 2,
          timeout: 5_000,
          // The client otherwise builds two Error objects (stack traces) per request "for context": the
          // ingest profile showed 22 % of the gateway's CPU in RequestError/TimeoutError constructors.
          noAsyncTraces: true,
        });
        if (this.stopping) {
          await nc.close();
          return;
        }
        this.attach(nc);
        return;
      } catch (err) {
        if (attempt === 0 || attempt % 30 === 0) {
          this.logger.warn({ servers, attempt, err: describeError(err) }, 'cannot connect to NATS; retrying');
        }
        const sleep = cancellableDelay(backoffMs(attempt, 250, 2_000));
        this.connectSleep = sleep;
        await sleep.promise;
      }
    }
  }

  private attach(nc: NatsConnection): void {
    this.nc = nc;
    this.connected = true;
    this.js = jetstream(nc, { timeout: this.config.ingest.publishTimeoutMs });
    this.requester = new JsRequester(nc);
    this.logger.info({ server: nc.getServer(), version: nc.info?.version }, 'connected to NATS');
    void this.watchStatus(nc);
    void nc.closed().then((err) => {
      this.connected = false;
      if (!this.stopping) this.logger.error({ err: err ? describeError(err) : undefined }, 'NATS connection closed');
    });
    void this.ensure();
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    let reconnecting = false;
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'ping':
          break;
        case 'disconnect':
          this.connected = false;
          this.streamEnsured = false;
          this.logger.warn({ status: s }, 'NATS disconnected');
          break;
        case 'reconnecting':
          // Once per outage: the client tries every reconnectTimeWait.
          if (!reconnecting) this.logger.info({ status: s }, 'NATS reconnecting');
          reconnecting = true;
          break;
        case 'reconnect':
          reconnecting = false;
          this.connected = true;
          this.logger.info({ status: s }, 'NATS reconnected');
          void this.ensure();
          for (const tail of this.tails) tail.recreate('reconnected');
          break;
        case 'close':
        case 'error':
        case 'staleConnection':
        case 'slowConsumer':
          this.logger.warn({ status: s }, `NATS ${s.type}`);
          break;
        default:
          this.logger.info({ status: s }, `NATS ${s.type}`);
      }
    }
  }

  /** Creates or updates the stream and opens the KV bucket; retried until it works or the connection drops. */
  private ensure(): Promise<void> {
    // Cleared in a later microtask, so an ensure that finds nothing to do cannot leave a stale promise behind.
    this.ensuring ??= this.ensureLoop().finally(() => (this.ensuring = undefined));
    return this.ensuring;
  }

  private async ensureLoop(): Promise<void> {
    for (let attempt = 0; !this.stopping && this.connected; attempt++) {
      try {
        await this.ensureStreamAndBucket();
        this.streamEnsured = true;
        this.markFirstReady();
        return;
      } catch (err) {
        this.logger.warn({ stream: this.streamName, attempt, err: describeError(err) }, 'ensuring the stream failed');
        const sleep = cancellableDelay(backoffMs(attempt, 250, 5_000));
        this.ensureSleep = sleep;
        await sleep.promise;
      }
    }
  }

  private async ensureStreamAndBucket(): Promise<void> {
    const nc = this.nc!;
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: ADMIN_TIMEOUT_MS });
    const wanted = streamConfigFor(this.config);
    let info: StreamInfo;
    try {
      info = await jsm.streams.info(wanted.name);
      const c = info.config;
      const differs =
        c.subjects?.join(',') !== wanted.subjects!.join(',') ||
        c.max_age !== wanted.max_age ||
        c.max_bytes !== wanted.max_bytes ||
        c.num_replicas !== wanted.num_replicas ||
        c.duplicate_window !== wanted.duplicate_window ||
        c.discard !== wanted.discard ||
        !c.allow_direct;
      if (differs) {
        try {
          info = await jsm.streams.update(wanted.name, wanted);
          this.logger.info({ stream: wanted.name }, 'JetStream stream updated');
        } catch (err) {
          // The existing stream still works; an operator has to settle e.g. a replica change.
          this.logger.error({ stream: wanted.name, err: describeError(err) }, 'cannot update the JetStream stream');
        }
      }
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
      info = await jsm.streams.add(wanted);
      this.logger.info({ stream: wanted.name, created: info.created }, 'JetStream stream created');
      // Tails of a lost stream would otherwise wait on consumers that no longer exist.
      for (const tail of this.tails) tail.recreate('stream created');
    }

    const ttlMs = this.config.idempotency.ttlMs;
    const kv = await new Kvm(this.js!).create(this.bucketName, {
      ttl: ttlMs,
      replicas: this.config.stream.replicas,
      history: 1,
    });
    const status = await kv.status();
    if (status.ttl !== ttlMs) {
      // Kvm.create opens an existing bucket as it is; keep its TTL in step with the config.
      await jsm.streams.update(status.streamInfo.config.name, { max_age: nanos(ttlMs) });
    }
    this.jsm = jsm;
    this.kv = kv;
    this.kvDirect = status.streamInfo.config.allow_direct === true;
  }

  // ---- port --------------------------------------------------------------------------------------

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

  async isReady(): Promise<boolean> {
    const { nc, jsm } = this;
    if (!nc || !jsm || !this.connected || nc.isClosed() || !this.kv) return false;
    try {
      await withTimeout(jsm.streams.info(this.streamName), READY_TIMEOUT_MS, 'stream info');
      return true;
    } catch (err) {
      if (isStreamNotFound(err)) void this.ensure();
      return false;
    }
  }

  async append(req: AppendRequest): Promise<AppendResult> {
    // A subject outside the stream would look like an outage (no responders); it is a caller bug.
    if (!isStreamSubject(req.subject, this.config.stream.subjectPrefix)) {
      throw new RangeError(`not a subject of stream ${this.streamName}: ${JSON.stringify(req.subject)}`);
    }
    this.live(); // fail fast, without waiting for the turn
    this.appending++;
    try {
      return await this.appendNow(req);
    } finally {
      if (--this.appending === 0) for (const wake of this.appendsIdle.splice(0)) wake();
    }
  }

  private async appendNow(req: AppendRequest): Promise<AppendResult> {
    const deadline = Date.now() + this.config.ingest.publishTimeoutMs;
    const key = idempotencyKey(req.msgId);
    await this.nextTurn();
    const { kv } = this.live();
    const requester = this.requester!;

    // The lookup may take the whole budget (as the client's own request timeout would); the publish below gets
    // what is left of it, at least 100 ms.
    try {
      const entry = this.kvDirect
        ? await requester.kvGet(this.bucketName, key, this.config.ingest.publishTimeoutMs)
        : await kv.get(key).then((e) => e && { operation: e.operation, value: e.string() });
      const seq = entry?.operation === 'PUT' ? Number(entry.value) : NaN;
      if (Number.isSafeInteger(seq) && seq > 0) return { seq, duplicate: true };
    } catch (err) {
      throw unavailable('idempotency lookup failed', err);
    }

    // Not connected any more: a publish now would sit in the reconnect buffer and is not durable (pitfall 3).
    if (!this.connected) throw new StoreUnavailableError('NATS is disconnected');
    let ack;
    try {
      ack = await requester.publish(req.subject, req.data, req.msgId, Math.max(100, deadline - Date.now()));
    } catch (err) {
      if (isNoResponders(err)) void this.ensure();
      throw unavailable('JetStream publish failed', err);
    }
    // Stored: answer now; the KV record follows in the background (idempotency-recorder.ts). Also for a
    // duplicate ack: the record must exist once the msgId window has passed.
    this.recorder.record(key, String(ack.seq));
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  /**
   * One shared promise per event-loop turn. Each HTTP request is handled in its own I/O callback, and the NATS
   * client flushes its buffer in a microtask after each, i.e. one socket write per request per round trip;
   * starting the appends of a turn together in the check phase sends their lookups in one write, and their
   * publishes (answered together) in one more.
   */
  private nextTurn(): Promise<void> {
    this.turn ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.turn = undefined;
        resolve();
      }),
    );
    return this.turn;
  }

  async state(): Promise<StreamState> {
    const { jsm } = this.live();
    try {
      return streamStateOf(await withTimeout(jsm.streams.info(this.streamName), ADMIN_TIMEOUT_MS, 'stream info'));
    } catch (err) {
      throw unavailable('reading the stream state failed', err);
    }
  }

  /** An ephemeral consumer positioned by the server's own by-start-time lookup (no direct get by time on 2.9). */
  async seqAtTime(timeMs: number): Promise<number> {
    const { jsm } = this.live();
    const filter = `${this.config.stream.subjectPrefix}.>`;
    let consumerName: string | undefined;
    try {
      const ci = await withTimeout(
        jsm.consumers.add(this.streamName, {
          deliver_policy: DeliverPolicy.StartTime,
          opt_start_time: new Date(timeMs).toISOString(),
          filter_subject: filter,
          ack_policy: AckPolicy.None,
          mem_storage: true,
          num_replicas: 1,
          inactive_threshold: nanos(10_000),
        }),
        ADMIN_TIMEOUT_MS,
        'consumer create',
      );
      consumerName = ci.name;
      if (ci.num_pending === 0) {
        return (
          streamStateOf(await withTimeout(jsm.streams.info(this.streamName), ADMIN_TIMEOUT_MS, 'stream info')).lastSeq +
          1
        );
      }
      // The consumer starts at the first message at or after the time; read its seq directly.
      const msg = await withTimeout(
        jsm.direct.getMessage(this.streamName, { seq: ci.delivered.stream_seq + 1, next_by_subj: filter }),
        ADMIN_TIMEOUT_MS,
        'direct get',
      );
      if (!msg) throw new StoreUnavailableError('seqAtTime: the first message after the time vanished');
      return msg.seq;
    } catch (err) {
      throw unavailable('seqAtTime failed', err);
    } finally {
      if (consumerName) void jsm.consumers.delete(this.streamName, consumerName).catch(() => undefined);
    }
  }

  async openReader(opts: ReadOptions): Promise<EventReader> {
    const { js } = this.live();
    const filter = narrowFilter(opts.filter, this.config.stream.subjectPrefix);
    // onRelease may run inside open() already (nothing to read), before `reader` exists.
    const ref: { reader?: JetStreamReader; released?: boolean } = {};
    const onRelease = () => {
      ref.released = true;
      if (ref.reader) this.readers.delete(ref.reader);
    };
    ref.reader = await JetStreamReader.open(js, this.streamName, filter, opts, this.logger, onRelease);
    if (!ref.released) this.readers.add(ref.reader);
    return ref.reader;
  }

  async tail(fromSeq: number, handler: TailHandler): Promise<Tail> {
    if (this.stopping) throw new StoreUnavailableError('the store is stopped');
    const tail = new JetStreamTail(
      {
        js: () => this.live().js,
        epoch: async () => (await this.state()).epoch,
        connected: () => this.connected,
        stream: this.streamName,
        filter: `${this.config.stream.subjectPrefix}.>`,
        logger: this.logger,
      },
      fromSeq,
      handler,
    );
    this.tails.add(tail);
    await tail.ready();
    return {
      stop: async () => {
        this.tails.delete(tail);
        await tail.stop();
      },
    };
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
  private live(): { js: JetStreamClient; jsm: JetStreamManager; kv: KV } {
    if (this.stopping) throw new StoreUnavailableError('the store is stopped');
    if (!this.nc || !this.connected || !this.js || !this.jsm || !this.kv) {
      throw new StoreUnavailableError('NATS JetStream is not connected');
    }
    return { js: this.js, jsm: this.jsm, kv: this.kv };
  }
}
