/**
 * The live tail, and the registry of a store's running tails: every event of the stream (`<prefix>.>`) from a
 * sequence on, handed to the handler synchronously and in order, never a sequence twice.
 *
 * It reads with its own pulls (jetstream-tail-feed.ts): an ephemeral consumer with no acks (R1, in memory) from
 * lastSeq + 1, a callback subscription on an inbox, pull requests kept ahead of the events with idle heartbeats.
 * The handler runs inside the subscription callback: no JsMsg, no async iterator step, no microtask per event,
 * and `time` is parsed from the reply subject only when asked for.
 *
 * It used to read with the client's ordered consumer (`consume()`), and every client of a process was held
 * 3–5 s at times under load while the consumer had messages pending: recovery then depended on the library
 * noticing two missed heartbeats, its pull budget being in step with the server's, and, after its own
 * recreation, on a budget it did not reset. The mechanism was not reproduced in isolation (busy event-loop
 * blocks of 50 ms–2.5 s at 200 events/s only delayed delivery by the block itself). Here each way a feed goes
 * wrong ends it, and a new consumer is created from lastSeq + 1 at once:
 * - every reconnect (recreateAll): an R1 in-memory consumer does not survive a server restart;
 * - a jump in the delivery sequence (a message lost on the way);
 * - no message and no heartbeat for three heartbeat intervals (the consumer's node died while our connection to
 *   another node stayed up); after the first such interval the feed sends a new pull, for the case where the
 *   pulls we count on are not on the server;
 * - the consumer deleted or not found (409, 404, 503), or any other unexpected pull status;
 * - a stall watchdog, as a last resort: messages pending on the consumer but none delivered for two looks in a
 *   row (a second apart); it asks the server only after a second without messages.
 * Ends that repeat without a delivered event in between back off, as do failed consumer creations.
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { StoreUnavailableError, type Tail, type TailHandler } from '../event-store.port.js';
import { ReadEvent } from './jetstream-ack-reply.js';
import { TailFeed } from './jetstream-tail-feed.js';
import {
  ADMIN_TIMEOUT_MS,
  backoffMs,
  cancellableDelay,
  describeError,
  nanos,
  withTimeout,
  type StoreLogger,
} from './jetstream-util.js';

export interface TailDeps {
  /** The current connection's handles, or throws while the store is not connected. */
  live(): { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager };
  /** The stream's current epoch; a change under a running tail is logged (see checkEpoch). */
  epoch?: () => Promise<string>;
  /** Whether the connection is up (missed heartbeats and the watchdog do not judge a disconnected feed). */
  connected(): boolean;
  stream: string;
  filter: string;
  logger: StoreLogger;
  /** Pull expiry (default 10 s). */
  expiresMs?: number;
  /** Idle heartbeat asked of the server (default 1 s, at most a quarter of the expiry); two missed end a feed. */
  heartbeatMs?: number;
  /** How often the stall watchdog looks (default 1 s); two looks in a row without progress recreate the feed. */
  watchdogMs?: number;
}

const PULL_BATCH = 1_024;
const EXPIRES_MS = 10_000;
const HEARTBEAT_MS = 1_000;
const WATCHDOG_MS = 1_000;
const DELETE_TIMEOUT_MS = 2_000;
/** The server removes a consumer left behind (a delete that failed) after this long without pulls. */
const INACTIVE_MS = 60_000;

export class JetStreamTail {
  private lastSeq: number;
  private stopped = false;
  private feed?: TailFeed;
  private consumer?: string;
  /** A recreate asked for while no feed was running (during creation or backoff): the next one ends at once. */
  private asked?: string;
  private sleeper?: { cancel: () => void };
  private readonly loop: Promise<void>;
  private readonly watchdog: NodeJS.Timeout;
  private lastReceived = -1;
  private stalledChecks = 0;
  private checking = false;
  private stopping?: Promise<void>;
  private epoch?: string;
  private readonly firstAttempt: Promise<void>;

  constructor(
    private readonly deps: TailDeps,
    fromSeq: number,
    private readonly handler: TailHandler,
  ) {
    this.lastSeq = Math.max(0, Math.floor(fromSeq) - 1);
    let markFirst!: () => void;
    this.firstAttempt = new Promise((resolve) => (markFirst = resolve));
    this.loop = this.run(markFirst);
    this.watchdog = setInterval(() => void this.checkStall(), deps.watchdogMs ?? WATCHDOG_MS);
    this.watchdog.unref();
  }

  /** Resolves once the first consumer is created or its creation failed (it is then retried in the background). */
  ready(): Promise<void> {
    return this.firstAttempt;
  }

  /** The last sequence handed to the handler (fromSeq - 1 before the first). */
  get position(): number {
    return this.lastSeq;
  }

  /** Drops the current consumer; the loop creates a new one from lastSeq + 1 (e.g. after a reconnect). */
  recreate(reason: string): void {
    if (this.stopped) return;
    const log = reason === 'stalled' ? this.deps.logger.warn : this.deps.logger.info;
    log.call(
      this.deps.logger,
      { stream: this.deps.stream, lastSeq: this.lastSeq, reason },
      'recreating the JetStream tail',
    );
    if (this.feed) this.feed.end(reason);
    else {
      this.asked = reason;
      this.sleeper?.cancel();
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      clearInterval(this.watchdog);
      this.sleeper?.cancel();
      this.feed?.end('stopped');
      await this.loop;
    })();
    return this.stopping;
  }

  private async run(markFirst: () => void): Promise<void> {
    const { logger, stream } = this.deps;
    let failures = 0;
    while (!this.stopped) {
      this.asked = undefined;
      let consumer: string | undefined;
      let fault = true;
      let diagnosis: Promise<void> | undefined;
      try {
        const { nc, js, jsm } = this.deps.live();
        consumer = await this.createConsumer(jsm);
        if (this.stopped) break;
        await this.checkEpoch();
        const feed = this.startFeed(nc, js.apiPrefix, consumer);
        markFirst();
        logger.info({ stream, fromSeq: this.lastSeq + 1 }, 'JetStream tail started');
        if (this.asked !== undefined) feed.end(this.asked);
        if (this.stopped) feed.end('stopped');
        const end = await feed.ended;
        fault = end.fault;
        if (feed.received > 0) failures = 0;
        if (fault && !this.stopped) {
          // Silence is the case not understood yet: what the server says of the consumer is logged with it
          // (asked before the consumer is deleted, not waited for).
          if (end.reason === 'heartbeats missed') diagnosis = this.logSilence(jsm, consumer, feed);
          else {
            logger.warn(
              { stream, lastSeq: this.lastSeq, detail: end.detail, ...feed.snapshot() },
              `JetStream tail feed ended: ${end.reason}; recreating it`,
            );
          }
        }
      } catch (err) {
        markFirst();
        if (!this.stopped) {
          logger.warn({ stream, lastSeq: this.lastSeq, err: describeError(err) }, 'JetStream tail failed; retrying');
        }
      } finally {
        this.feed = undefined;
        this.consumer = undefined;
        if (consumer) {
          // On stop() the delete must finish before the connection drains, or the consumer lingers on the server;
          // otherwise don't wait.
          const name = consumer;
          const deleted = diagnosis ? diagnosis.then(() => this.deleteConsumer(name)) : this.deleteConsumer(name);
          if (this.stopped) await deleted;
        }
      }
      if (this.stopped) break;
      // Asked for (reconnect …) or a first fault: at once. Faults in a row with nothing delivered: backoff.
      if (!fault || failures++ === 0 || this.asked !== undefined) continue;
      const sleep = cancellableDelay(backoffMs(failures - 2));
      this.sleeper = sleep;
      await sleep.promise;
      this.sleeper = undefined;
    }
    markFirst();
  }

  private async logSilence(jsm: JetStreamManager, consumer: string, feed: TailFeed): Promise<void> {
    const { stream, logger } = this.deps;
    let server: object = {};
    try {
      const ci = await withTimeout(jsm.consumers.info(stream, consumer), 1_000, 'tail consumer info');
      server = { numPending: ci.num_pending, numWaiting: ci.num_waiting, delivered: ci.delivered.stream_seq };
    } catch (err) {
      server = { infoFailed: describeError(err) };
    }
    logger.warn(
      { stream, lastSeq: this.lastSeq, ...feed.snapshot(), ...server },
      'JetStream tail feed ended: heartbeats missed; recreating it',
    );
  }

  private async createConsumer(jsm: JetStreamManager): Promise<string> {
    const ci = await withTimeout(
      jsm.consumers.add(this.deps.stream, {
        filter_subject: this.deps.filter,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.lastSeq + 1,
        ack_policy: AckPolicy.None,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(INACTIVE_MS),
      }),
      ADMIN_TIMEOUT_MS,
      'tail consumer create',
    );
    return ci.name;
  }

  private startFeed(nc: NatsConnection, apiPrefix: string, consumer: string): TailFeed {
    const expiresMs = this.deps.expiresMs ?? EXPIRES_MS;
    const feed = new TailFeed({
      nc,
      apiPrefix,
      stream: this.deps.stream,
      consumer,
      batch: PULL_BATCH,
      expiresMs,
      heartbeatMs: Math.min(this.deps.heartbeatMs ?? HEARTBEAT_MS, expiresMs / 4),
      connected: () => this.deps.connected(),
      onEvent: (seq, subject, data, reply, tsEnd) => this.deliver(seq, subject, data, reply, tsEnd),
    });
    feed.start();
    this.feed = feed;
    this.consumer = consumer;
    this.lastReceived = -1;
    this.stalledChecks = 0;
    return feed;
  }

  private deliver(seq: number, subject: string, data: Uint8Array, reply: string, tsEnd: number): void {
    if (seq <= this.lastSeq) return; // never twice
    this.lastSeq = seq;
    try {
      this.handler(new ReadEvent(seq, subject, data, reply, tsEnd));
    } catch (err) {
      // A faulty handler must not stop the feed for everyone else.
      this.deps.logger.error({ err: describeError(err), seq }, 'tail handler threw');
    }
  }

  /**
   * A stream deleted and recreated (or a server that lost its store) restarts sequences under a new
   * epoch. The tail keeps going from lastSeq + 1, which on the new stream skips its first events: the
   * port has no way to tell the handler, so this is logged loudly and left to callers watching state().
   */
  private async checkEpoch(): Promise<void> {
    if (!this.deps.epoch) return;
    try {
      const epoch = await this.deps.epoch();
      if (this.epoch && epoch !== this.epoch) {
        this.deps.logger.error(
          { stream: this.deps.stream, previousEpoch: this.epoch, epoch, lastSeq: this.lastSeq },
          'the stream was recreated under the live tail: sequences restarted',
        );
      }
      this.epoch = epoch;
    } catch {
      // Informational only; the consumer was just created, so the stream is reachable anyway.
    }
  }

  private async deleteConsumer(consumer: string): Promise<void> {
    try {
      const { jsm } = this.deps.live();
      await withTimeout(
        jsm.consumers.delete(this.deps.stream, consumer),
        DELETE_TIMEOUT_MS,
        'deleting the tail consumer',
      );
    } catch {
      // Best effort: it may be gone already (server restart) and inactive_threshold cleans up the rest.
    }
  }

  /** A feed that has pending messages but does not advance is recreated. */
  private async checkStall(): Promise<void> {
    const { feed, consumer } = this;
    if (this.stopped || this.checking || !feed || !consumer || !this.deps.connected()) return;
    if (feed.received !== this.lastReceived) {
      this.lastReceived = feed.received;
      this.stalledChecks = 0;
      return;
    }
    this.checking = true;
    try {
      const info = await withTimeout(
        this.deps.live().jsm.consumers.info(this.deps.stream, consumer),
        2_000,
        'tail consumer info',
      );
      this.stalledChecks = info.num_pending > 0 ? this.stalledChecks + 1 : 0;
    } catch (err) {
      this.stalledChecks += 1;
      this.deps.logger.warn({ err: describeError(err) }, 'JetStream tail consumer info failed');
    } finally {
      this.checking = false;
    }
    if (this.stalledChecks >= 2 && this.feed === feed && !this.stopped) {
      this.stalledChecks = 0;
      this.recreate('stalled');
    }
  }
}

/** The tails running on one store: recreated together after a reconnect or a lost stream, stopped with the store. */
export class JetStreamTails {
  private readonly running = new Set<JetStreamTail>();
  private stopped = false;

  /** `deps` are shared by every tail of the store. */
  constructor(private readonly deps: TailDeps) {}

  async start(fromSeq: number, handler: TailHandler): Promise<Tail> {
    if (this.stopped) throw new StoreUnavailableError('the store is stopped');
    const tail = new JetStreamTail(this.deps, fromSeq, handler);
    this.running.add(tail);
    await tail.ready();
    return {
      stop: async () => {
        this.running.delete(tail);
        await tail.stop();
      },
    };
  }

  recreateAll(reason: string): void {
    for (const tail of this.running) tail.recreate(reason);
  }

  async stopAll(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.running].map((t) => t.stop()));
  }
}
