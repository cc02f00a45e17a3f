/**
 * Appends on JetStream, with idempotency across two horizons:
 * - Nats-Msg-Id covers concurrent retries inside the stream's duplicate window;
 * - a KV record (hashed msgId → seq, kept for the idempotency TTL) covers provider retries that come days later.
 *   It is looked up before the publish and written by a background recorder after the answer (see
 *   idempotency-recorder.ts for the trade-off).
 *
 * Appends of one event-loop turn are issued together (KV lookups in one socket write, their publishes in the
 * next): the per-request socket writes to NATS were the largest single cost in the ingest profile.
 */
import type { KV } from '@nats-io/kv';
import type { AppConfig } from '../../config/app-config.js';
import { StoreUnavailableError, type AppendRequest, type AppendResult } from '../event-store.port.js';
import {
  IdempotencyRecorder,
  type IdempotencyRecorderOptions,
  type IdempotencyRecorderStats,
} from './idempotency-recorder.js';
import type { JetStreamConnection } from './jetstream-connection.js';
import type { JetStreamProvisioner } from './jetstream-provisioner.js';
import { cancellableDelay, idempotencyKey, isNoResponders, unavailable, type StoreLogger } from './jetstream-util.js';
import { isStreamSubject } from './subject-filter.js';

export interface AppenderDeps {
  config: AppConfig;
  logger: StoreLogger;
  connection: JetStreamConnection;
  provisioner: JetStreamProvisioner;
  /** The bucket now, or StoreUnavailableError: an append never waits on a reconnect. */
  live(): { kv: KV };
  recorder?: IdempotencyRecorderOptions;
}

const encoder = new TextEncoder();

export class JetStreamAppender {
  private readonly recorder: IdempotencyRecorder;
  /** Appends between their start and their answer; settle() lets them finish before draining the recorder. */
  private appending = 0;
  private appendsIdle: (() => void)[] = [];
  /** Resolves on the next check phase: appends started in one event-loop turn go out together. */
  private turn?: Promise<void>;

  constructor(private readonly deps: AppenderDeps) {
    const { connection, provisioner } = deps;
    const sink = {
      put: (key: string, value: string) =>
        connection.requester!.publish(
          `$KV.${provisioner.bucketName}.${key}`,
          encoder.encode(value),
          undefined,
          deps.config.ingest.publishTimeoutMs,
        ),
    };
    this.recorder = new IdempotencyRecorder(
      // Not live(): records queued before stop() are still written while the store shuts down.
      () => (connection.connected && provisioner.kv && connection.requester ? sink : undefined),
      deps.logger,
      {
        ...deps.recorder,
        onFailure: (err) => {
          if (isNoResponders(err)) void provisioner.ensure(); // e.g. the bucket was deleted
        },
      },
    );
  }

  /** The idempotency recorder's counters (pending, written, dropped). */
  stats(): IdempotencyRecorderStats {
    return this.recorder.stats();
  }

  async append(req: AppendRequest): Promise<AppendResult> {
    const stream = this.deps.config.stream;
    // A subject outside the stream would look like an outage (no responders); it is a caller bug.
    if (!isStreamSubject(req.subject, stream.subjectPrefix)) {
      throw new RangeError(`not a subject of stream ${stream.name}: ${JSON.stringify(req.subject)}`);
    }
    this.deps.live(); // fail fast, without waiting for the turn
    this.appending++;
    try {
      return await this.appendNow(req);
    } finally {
      if (--this.appending === 0) for (const wake of this.appendsIdle.splice(0)) wake();
    }
  }

  /**
   * Records are written after the answer: lets the appends in flight finish, then writes what is queued, all
   * within `budgetMs`; what is left after it is counted as dropped.
   */
  async settle(budgetMs: number): Promise<void> {
    const started = Date.now();
    if (this.appending > 0) {
      const wait = cancellableDelay(budgetMs);
      await Promise.race([new Promise<void>((resolve) => this.appendsIdle.push(resolve)), wait.promise]);
      wait.cancel();
    }
    await this.recorder.drain(Math.max(0, budgetMs - (Date.now() - started)));
  }

  private async appendNow(req: AppendRequest): Promise<AppendResult> {
    const { config, connection, provisioner } = this.deps;
    const timeoutMs = config.ingest.publishTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    const key = idempotencyKey(req.msgId);
    await this.nextTurn();
    const { kv } = this.deps.live();
    const requester = connection.requester!;

    // The lookup may take the whole budget (as the client's own request timeout would); the publish below gets
    // what is left of it, at least 100 ms.
    try {
      const entry = provisioner.kvDirect
        ? await requester.kvGet(provisioner.bucketName, key, timeoutMs)
        : await kv.get(key).then((e) => e && { operation: e.operation, value: e.string() });
      const seq = entry?.operation === 'PUT' ? Number(entry.value) : NaN;
      if (Number.isSafeInteger(seq) && seq > 0) return { seq, duplicate: true };
    } catch (err) {
      throw unavailable('idempotency lookup failed', err);
    }

    // Not connected any more: a publish now would sit in the client's reconnect buffer, which is not durable (a
    // publish sent while disconnected was measured to time out unstored), so answer "unavailable" at once.
    if (!connection.connected) throw new StoreUnavailableError('NATS is disconnected');
    let ack;
    try {
      ack = await requester.publish(req.subject, req.data, req.msgId, Math.max(100, deadline - Date.now()));
    } catch (err) {
      if (isNoResponders(err)) void provisioner.ensure();
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
}
