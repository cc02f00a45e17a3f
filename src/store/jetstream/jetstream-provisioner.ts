/**
 * Creates or updates the event stream and the idempotency bucket, on every connection that can take this gateway's
 * events, retrying until it works or the connection drops. Doing it on every (re)connect means a server that lost
 * its store gets the stream back, under a new epoch (state() reports it), instead of answering "no responders".
 */
import {
  DiscardPolicy,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { AppConfig } from '../../config/app-config.js';
import type { StreamState } from '../event-store.port.js';
import { largestMessageBytes, type JetStreamConnection } from './jetstream-connection.js';
import {
  ADMIN_TIMEOUT_MS,
  backoffMs,
  cancellableDelay,
  describeError,
  isStreamNotFound,
  nanos,
  streamStateOf,
  unavailable,
  withTimeout,
  type StoreLogger,
} from './jetstream-util.js';

const READY_TIMEOUT_MS = 1_000;

/** The event stream's configuration: only keys that nats-server 2.9 (the oldest server supported) understands. */
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
    // The server refuses anything larger itself, whatever a client sends.
    max_msg_size: largestMessageBytes(config),
    num_replicas: s.replicas,
    duplicate_window: nanos(s.duplicateWindowMs),
    allow_direct: true,
  };
}

/** The KV bucket of idempotency records (hashed msgId → stream seq) beside the stream. */
export function idempotencyBucketFor(config: AppConfig): string {
  return `${config.stream.name}_idem`;
}

export interface ProvisionerHooks {
  /** The stream had to be created: consumers on a lost stream are gone with it. */
  streamCreated(): void;
}

export class JetStreamProvisioner {
  private _jsm?: JetStreamManager;
  private _kv?: KV;
  /** The bucket allows direct gets (buckets made by Kvm.create do); else lookups go through `kv.get`. */
  private _kvDirect = false;
  private _provisioned = false;
  private ensuring?: Promise<void>;
  private ensureSleep?: { cancel: () => void };
  private markFirstReady!: () => void;
  /** Resolves the first time the stream and the bucket are in place. */
  readonly firstReady = new Promise<void>((resolve) => (this.markFirstReady = resolve));
  readonly bucketName: string;

  constructor(
    private readonly config: AppConfig,
    private readonly logger: StoreLogger,
    private readonly connection: JetStreamConnection,
    private readonly hooks: ProvisionerHooks,
  ) {
    this.bucketName = idempotencyBucketFor(config);
    connection.listen({
      usable: () => void this.ensure(),
      disconnected: () => (this._provisioned = false),
    });
  }

  get jsm(): JetStreamManager | undefined {
    return this._jsm;
  }

  get kv(): KV | undefined {
    return this._kv;
  }

  get kvDirect(): boolean {
    return this._kvDirect;
  }

  /** The stream and bucket were put in place on the current connection. */
  get provisioned(): boolean {
    return this._provisioned;
  }

  /** Ends a backoff between attempts, so stop() does not wait it out. */
  stop(): void {
    this.ensureSleep?.cancel();
  }

  /** Creates or updates the stream and opens the KV bucket; retried until it works or the connection drops. */
  ensure(): Promise<void> {
    // Cleared in a later microtask, so an ensure that finds nothing to do cannot leave a stale promise behind.
    this.ensuring ??= this.ensureLoop().finally(() => (this.ensuring = undefined));
    return this.ensuring;
  }

  /** Readiness: connected to a server that fits, the bucket open, and the stream answering (re-created if lost). */
  async isReady(): Promise<boolean> {
    const { nc, connected, payloadProblem } = this.connection;
    const jsm = this._jsm;
    if (!nc || !jsm || !connected || nc.isClosed() || !this._kv || payloadProblem) return false;
    try {
      await withTimeout(jsm.streams.info(this.config.stream.name), READY_TIMEOUT_MS, 'stream info');
      return true;
    } catch (err) {
      if (isStreamNotFound(err)) void this.ensure();
      return false;
    }
  }

  /** The stream's epoch and sequence bounds now. */
  async state(jsm: JetStreamManager): Promise<StreamState> {
    try {
      const info = await withTimeout(jsm.streams.info(this.config.stream.name), ADMIN_TIMEOUT_MS, 'stream info');
      return streamStateOf(info);
    } catch (err) {
      throw unavailable('reading the stream state failed', err);
    }
  }

  private async ensureLoop(): Promise<void> {
    const c = this.connection;
    for (let attempt = 0; !c.stopping && c.connected && !c.payloadProblem; attempt++) {
      try {
        await this.ensureStreamAndBucket();
        this._provisioned = true;
        this.markFirstReady();
        return;
      } catch (err) {
        this.logger.warn(
          { stream: this.config.stream.name, attempt, err: describeError(err) },
          'ensuring the stream failed',
        );
        const sleep = cancellableDelay(backoffMs(attempt, 250, 5_000));
        this.ensureSleep = sleep;
        await sleep.promise;
      }
    }
  }

  private async ensureStreamAndBucket(): Promise<void> {
    const nc = this.connection.nc!;
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
        c.max_msg_size !== wanted.max_msg_size ||
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
      this.hooks.streamCreated();
    }

    const ttlMs = this.config.idempotency.ttlMs;
    const kv = await new Kvm(this.connection.js!).create(this.bucketName, {
      ttl: ttlMs,
      replicas: this.config.stream.replicas,
      history: 1,
    });
    const status = await kv.status();
    if (status.ttl !== ttlMs) {
      // Kvm.create opens an existing bucket as it is; keep its TTL in step with the config.
      await jsm.streams.update(status.streamInfo.config.name, { max_age: nanos(ttlMs) });
    }
    this._jsm = jsm;
    this._kv = kv;
    this._kvDirect = status.streamInfo.config.allow_direct === true;
  }
}
