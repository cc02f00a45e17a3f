/**
 * The live tail, and the registry of a store's running tails: one ordered consumer over the whole stream (`<prefix>.>`), handing each message to the
 * handler synchronously and in order.
 *
 * The v3 ordered consumer recreates itself after gaps, missed heartbeats or a lost consumer, but after a
 * nats-server restart (R1 in-memory consumers do not survive it) 3.3.1 recreates it with a stale pull
 * budget and only resumes when heartbeats are missed (~7 s measured). Around it this class adds:
 * - recreate() on every reconnect, from lastSeq + 1, so the feed resumes at once;
 * - recreate() when the library reports missed heartbeats or recreates the consumer itself (the node holding
 *   the consumer died while our connection to another node stayed up; see logNotifications);
 * - a seq guard, so no seq reaches the handler twice whatever the library does;
 * - recreation from lastSeq + 1, with backoff, when the consume loop ends or throws;
 * - a stall watchdog: messages pending on the consumer but none delivered for two checks in a row (a second
 *   apart) → recreate. The library's own recovery waits for two missed heartbeats (a whole pull expiry, 5 s
 *   here), and an R1 in-memory consumer it recovered can stop advancing altogether; for every client of the
 *   process that is a latency cliff, so the watchdog acts first. It asks the server only after a second
 *   without messages.
 */
import { DeliverPolicy, type Consumer, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import { StoreUnavailableError, type Tail, type TailHandler } from '../event-store.port.js';
import {
  backoffMs,
  cancellableDelay,
  describeError,
  toStoredEvent,
  withTimeout,
  type StoreLogger,
} from './jetstream-util.js';

export interface TailDeps {
  /** The current client, or throws while the store is not connected. */
  js(): JetStreamClient;
  /** The stream's current epoch; a change under a running tail is logged (see checkEpoch). */
  epoch?: () => Promise<string>;
  /** Whether the connection is up (the watchdog does not judge a disconnected feed). */
  connected(): boolean;
  stream: string;
  filter: string;
  logger: StoreLogger;
  /** Pull expiry; also sets the heartbeat (half of it) and the library's reconnect check backoff. */
  expiresMs?: number;
  /** How often the stall watchdog looks (default 1 s); two looks in a row without progress recreate the feed. */
  watchdogMs?: number;
}

const DELETE_TIMEOUT_MS = 2_000;
const WATCHDOG_MS = 1_000;
/** Library notices worth a log line (not the per-pull `next`, `heartbeat` or pull-expiry `discard`/`debug`). */
const NOTABLE = new Set([
  'heartbeats_missed',
  'reset',
  'ordered_consumer_recreated',
  'consumer_not_found',
  'consumer_deleted',
  'stream_not_found',
  'no_responders',
  'exceeded_limits',
]);

export class JetStreamTail implements Tail {
  private lastSeq: number;
  private stopped = false;
  private consumer?: Consumer;
  private messages?: ConsumerMessages;
  private sleeper?: { cancel: () => void };
  private readonly loop: Promise<void>;
  private readonly watchdog: NodeJS.Timeout;
  private deliveredSinceCheck = false;
  private stalledChecks = 0;
  private checking = false;
  private stopping?: Promise<void>;
  private recreating = false;
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
    if (this.stopped || !this.messages) return;
    const log = reason === 'stalled' ? this.deps.logger.warn : this.deps.logger.info;
    log.call(
      this.deps.logger,
      { stream: this.deps.stream, lastSeq: this.lastSeq, reason },
      'recreating the JetStream tail',
    );
    this.recreating = true;
    this.messages.stop();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      clearInterval(this.watchdog);
      this.sleeper?.cancel();
      this.messages?.stop();
      await this.loop;
    })();
    return this.stopping;
  }

  private async run(markFirst: () => void): Promise<void> {
    const { logger, stream, filter } = this.deps;
    let failures = 0;
    while (!this.stopped) {
      let consumer: Consumer | undefined;
      try {
        consumer = await this.deps.js().consumers.get(stream, {
          filter_subjects: filter,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: this.lastSeq + 1,
          inactive_threshold: 60_000,
        });
        if (this.stopped) break;
        await this.checkEpoch();
        const expires = this.deps.expiresMs ?? 5_000;
        const messages = await consumer.consume({ max_messages: 1024, expires });
        this.consumer = consumer;
        this.messages = messages;
        this.stalledChecks = 0;
        void this.logNotifications(messages);
        markFirst();
        logger.info({ stream, fromSeq: this.lastSeq + 1 }, 'JetStream tail started');
        for await (const m of messages) {
          if (this.stopped) break;
          failures = 0;
          this.deliveredSinceCheck = true;
          if (m.seq <= this.lastSeq) continue; // never twice
          this.lastSeq = m.seq;
          try {
            this.handler(toStoredEvent(m));
          } catch (err) {
            // A faulty handler must not stop the feed for everyone else.
            logger.error({ err: describeError(err), seq: m.seq }, 'tail handler threw');
          }
        }
        if (!this.stopped && !this.recreating) {
          logger.warn({ stream, lastSeq: this.lastSeq }, 'JetStream tail ended; recreating it');
        }
      } catch (err) {
        markFirst();
        if (!this.stopped) {
          logger.warn({ stream, lastSeq: this.lastSeq, err: describeError(err) }, 'JetStream tail failed; retrying');
        }
      } finally {
        this.messages?.stop();
        this.messages = undefined;
        this.consumer = undefined;
        if (consumer) {
          // On stop() the delete must finish before the connection drains, or the consumer lingers on the server
          // for minutes; otherwise don't wait.
          const deleted = this.deleteConsumer(consumer);
          if (this.stopped) await deleted;
        }
      }
      if (this.stopped) break;
      if (this.recreating) {
        this.recreating = false;
        continue; // asked for: no backoff
      }
      const sleep = cancellableDelay(backoffMs(failures++));
      this.sleeper = sleep;
      await sleep.promise;
    }
    markFirst();
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

  private async deleteConsumer(consumer: Consumer): Promise<void> {
    try {
      await withTimeout(consumer.delete(), DELETE_TIMEOUT_MS, 'deleting the tail consumer');
    } catch {
      // Best effort: it may be gone already (server restart) and inactive_threshold cleans up the rest.
    }
  }

  /**
   * Logs the library's notices and takes its recovery over. In a cluster the node holding this R1 consumer
   * can die while our connection (to another node) stays up, so no reconnect tells us. The library notices
   * missed heartbeats and recreates the consumer itself, but 3.3.1 keeps the old pull's unspent budget
   * (`reset()` does not clear `pending`), pulls for what is left of `max_messages` (as little as one message)
   * and then stalls until two more heartbeats are missed: ~14 s without live events, measured by the chaos
   * run. Recreating from lastSeq + 1 at the first sign (seq guard: nothing twice) gives a fresh budget.
   */
  private async logNotifications(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const n of messages.status()) {
        if (!NOTABLE.has(n.type)) continue;
        this.deps.logger.warn({ stream: this.deps.stream, notification: n }, 'JetStream tail consumer notice');
        if (n.type === 'heartbeats_missed' || n.type === 'ordered_consumer_recreated') {
          if (this.messages === messages && this.deps.connected()) this.recreate(n.type);
        }
      }
    } catch {
      // The status iterator ends with the messages iterator.
    }
  }

  /** A feed that has pending messages but does not advance is recreated. */
  private async checkStall(): Promise<void> {
    if (this.stopped || this.checking || !this.consumer || !this.deps.connected()) return;
    if (this.deliveredSinceCheck) {
      this.deliveredSinceCheck = false;
      this.stalledChecks = 0;
      return;
    }
    this.checking = true;
    const consumer = this.consumer;
    try {
      const info = await withTimeout(consumer.info(), 2_000, 'tail consumer info');
      this.stalledChecks = info.num_pending > 0 ? this.stalledChecks + 1 : 0;
    } catch (err) {
      this.stalledChecks += 1;
      this.deps.logger.warn({ err: describeError(err) }, 'JetStream tail consumer info failed');
    } finally {
      this.checking = false;
    }
    if (this.stalledChecks >= 2 && this.consumer === consumer && !this.stopped) {
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
