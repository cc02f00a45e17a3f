/**
 * A paged catch-up read over one short-lived pull consumer, and the registry of a store's open reads.
 * JetStream never says "end of stream" to a pull: one for more than is stored waits until it expires. So the read
 * is complete when nothing is pending (from the consumer's create response, then each message's pending count)
 * or `untilSeq` is reached, and a wait that sees no message for a while asks the server whether anything is
 * still pending (and asks again for what is). The consumer is deleted as soon as the read completes, and on
 * close().
 *
 * The pulls are our own, not the client's consume(): a `$JS.API.CONSUMER.MSG.NEXT` request whose messages come
 * to a callback subscription on an inbox and go straight into the queue the caller takes whole pages from. The
 * client's consume() cost a JsMsg, a parsed delivery-info object (a split of the reply subject into eleven
 * tokens), an async-iterator step and a microtask per message: a third of the gateway's CPU in a catch-up
 * profile. Here only the reply subject's stream and delivery sequences and pending count are read, from its end.
 * Pulls are kept at most READ_AHEAD messages ahead of what the caller has taken (queue included), in batches
 * asked for while the previous ones still arrive, so a catch-up never waits a round trip between batches and a
 * slow client holds at most READ_AHEAD events in memory.
 *
 * The consumer delivers each message once (no acks, no redelivery); a message lost on the way (a slow-consumer
 * drop of our connection) shows as a jump in the delivery sequence, and fails the read: the caller reads again
 * from the last event it took, so nothing is skipped.
 */
import {
  AckPolicy,
  DeliverPolicy,
  type ConsumerInfo,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { EventReader, ReadOptions, StoredEvent } from '../event-store.port.js';
import { StoreUnavailableError } from '../event-store.port.js';
import {
  ADMIN_TIMEOUT_MS,
  describeError,
  nanos,
  unavailable,
  withTimeout,
  type StoreLogger,
} from './jetstream-util.js';
import { AckReply, ReadEvent } from './jetstream-ack-reply.js';
import { pullStatus, sendPull } from './jetstream-pull.js';
import { narrowFilter } from './subject-filter.js';

/** How long a read waits for a message the pending count promised, before asking the server again. */
const IDLE_CHECK_MS = 2_000;
/** Client-side bound on one consumer info request. */
const INFO_DEADLINE_MS = 5_000;
const DELETE_TIMEOUT_MS = 2_000;
/** Messages asked for and not yet taken by the caller (queued ones included), at most. */
const READ_AHEAD = 4_096;
/** Messages one pull asks for; the next is sent once this much room is free, while the last still arrives. */
const PULL_BATCH = 1_024;
/** A pull's expiry on the server: longer than the idle check, which asks again for what did not come. */
const PULL_EXPIRES_MS = IDLE_CHECK_MS * 5;
/** Idle checks in a row that found messages pending although none arrive, before giving up. */
const MAX_IDLE_CHECKS = 3;

/** Handles of the store's connection a read needs. */
export interface ReaderHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export class JetStreamReader implements EventReader {
  /** No more messages will be queued (complete, failed or closed). */
  private done = false;
  private closed = false;
  private closing?: Promise<void>;
  private sub?: Subscription;
  /** Events received and not yet handed out; `head` is the first one still to hand out. */
  private queue: StoredEvent[] = [];
  private head = 0;
  private failure?: unknown;
  /** Events the waiting next() asked for: the callback wakes it once that many are queued (or the read ends). */
  private want = 0;
  /** Wakes next() when events were queued, or the read finished or failed. */
  private wakeReader?: () => void;
  /** Messages asked for by pulls and not received yet (as far as we know: a pull may expire short of them). */
  private requested = 0;
  /** The delivery sequence of the last message: the next must follow it. */
  private dseq = 0;
  /** Each message's reply subject, parsed. */
  private readonly ack: AckReply;

  private constructor(
    private readonly handles: ReaderHandles | undefined,
    private readonly stream: string,
    private readonly consumer: string | undefined,
    private pending: number,
    private readonly untilSeq: number,
    private readonly logger: StoreLogger,
    private readonly onRelease?: () => void,
  ) {
    if (!consumer || pending === 0) this.done = true;
    this.ack = new AckReply(consumer ? `$JS.ACK.${stream}.${consumer}.` : '');
  }

  /**
   * `filter` must already be narrowed to the stream's subjects; null means nothing can match.
   * `onRelease` runs once, when the consumer is given up (read complete or closed).
   */
  static async open(
    handles: ReaderHandles,
    stream: string,
    filter: string | null,
    opts: ReadOptions,
    logger: StoreLogger,
    onRelease?: () => void,
  ): Promise<JetStreamReader> {
    const fromSeq = Math.max(1, Math.floor(opts.fromSeq));
    if (filter === null || fromSeq > opts.untilSeq) {
      return new JetStreamReader(undefined, stream, undefined, 0, opts.untilSeq, logger);
    }
    let ci: ConsumerInfo;
    try {
      ci = await withTimeout(
        handles.jsm.consumers.add(stream, {
          filter_subject: filter,
          deliver_policy: DeliverPolicy.StartSequence,
          opt_start_seq: fromSeq,
          ack_policy: AckPolicy.None,
          mem_storage: true,
          num_replicas: 1,
          inactive_threshold: nanos(30_000),
        }),
        ADMIN_TIMEOUT_MS,
        'consumer create',
      );
    } catch (err) {
      throw unavailable('opening a JetStream reader failed', err);
    }
    const reader = new JetStreamReader(handles, stream, ci.name, ci.num_pending, opts.untilSeq, logger, onRelease);
    if (ci.num_pending === 0) await reader.release();
    else reader.start();
    return reader;
  }

  async next(maxEvents: number): Promise<StoredEvent[]> {
    const max = Math.max(1, Math.floor(maxEvents));
    let idleChecks = 0;
    // A full page unless the read ends first: one await per page, not per message.
    while (this.queue.length - this.head < max && !this.done && !this.closed) {
      this.want = max;
      const woken = await this.arrival();
      this.want = 0;
      if (woken) {
        idleChecks = 0;
        continue;
      }
      // Nothing arrived for a while: hand out what there is, or ask whether the pending count overestimates
      // (e.g. retention removed messages); what is still pending is asked for again (a pull lost with a
      // reconnect, or expired).
      if (this.done || this.head < this.queue.length) break;
      if ((await this.numPending()) === 0) this.finish();
      else if (++idleChecks >= MAX_IDLE_CHECKS) {
        this.fail(new StoreUnavailableError('JetStream reader: messages are pending but none arrive'));
      } else {
        this.requested = 0;
        this.pull();
      }
    }
    if (this.head === this.queue.length && this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      throw err;
    }
    const end = Math.min(this.queue.length, this.head + max);
    const page = this.head === 0 && end === this.queue.length ? this.queue : this.queue.slice(this.head, end);
    if (end === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else this.head = end;
    this.pull();
    if (this.done && this.head === this.queue.length) await this.release();
    return page;
  }

  close(): Promise<void> {
    this.closed = true;
    this.finish();
    this.queue = [];
    this.head = 0;
    return this.release();
  }

  private start(): void {
    const { nc } = this.handles!;
    const inbox = createInbox();
    try {
      this.sub = nc.subscribe(inbox, { callback: (err, msg) => this.onMessage(err, msg, inbox) });
    } catch (err) {
      throw unavailable('JetStream reader: subscribing failed', err);
    }
    this.pull();
  }

  /** Asks for more while fewer than READ_AHEAD messages are queued or on their way, a batch at a time. */
  private pull(): void {
    if (this.done || !this.sub) return;
    const room = READ_AHEAD - (this.queue.length - this.head) - this.requested;
    if (room < PULL_BATCH) return;
    const batch = Math.min(room, Math.max(PULL_BATCH, this.pending - this.requested));
    if (batch <= 0) return;
    this.requested += batch;
    const { nc, js } = this.handles!;
    try {
      sendPull(nc, js.apiPrefix, this.stream, this.consumer!, this.sub.getSubject(), {
        batch,
        expiresMs: PULL_EXPIRES_MS,
      });
    } catch (err) {
      this.fail(unavailable('JetStream reader: a pull failed', err));
    }
  }

  private onMessage(err: Error | null, msg: Msg, inbox: string): void {
    if (err) return this.fail(unavailable('JetStream reader: the subscription failed', err));
    if (this.done) return;
    if (msg.subject === inbox) return this.onStatus(msg);
    const reply = msg.reply ?? '';
    const info = this.ack;
    if (!info.parse(reply)) {
      return this.fail(new StoreUnavailableError('JetStream reader: a message without delivery info'));
    }
    if (info.dseq !== this.dseq + 1) {
      return this.fail(new StoreUnavailableError('JetStream reader: a message was lost on the way (delivery gap)'));
    }
    this.dseq = info.dseq;
    if (this.requested > 0) this.requested--;
    this.queue.push(new ReadEvent(info.seq, msg.subject, msg.data, reply, info.tsEnd));
    this.pending = info.pending;
    if (info.seq >= this.untilSeq || info.pending === 0) return this.finish();
    if (this.want > 0 && this.queue.length - this.head >= this.want) this.wakeReader?.();
    this.pull();
  }

  /**
   * A status on the inbox: a pull ended short (408 expired, 409 e.g. a leader change), or the consumer is gone.
   * What a pull did not deliver is no longer on its way; the idle check asks again if it was needed.
   */
  private onStatus(msg: Msg): void {
    const { code, description, left } = pullStatus(msg);
    if (code === 100) return; // a heartbeat (not asked for)
    this.requested = Math.max(0, this.requested - left);
    if (code === 409 && /consumer deleted/i.test(description)) {
      this.fail(new StoreUnavailableError(`JetStream reader: ${description}`));
    } else if (code !== 404 && code !== 408 && code !== 409) {
      this.logger.warn({ code, description }, 'JetStream reader: unexpected pull status');
    }
  }

  /** True when events came (or the read ended), false after IDLE_CHECK_MS without news. */
  private arrival(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.wakeReader = undefined;
        resolve(false);
      }, IDLE_CHECK_MS);
      this.wakeReader = () => {
        clearTimeout(timer);
        this.wakeReader = undefined;
        resolve(true);
      };
    });
  }

  /** No more messages: stops the subscription (an outstanding pull would otherwise wait for new events). */
  private finish(): void {
    if (this.done && !this.sub) return;
    this.done = true;
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.wakeReader?.();
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.failure ??= err;
    this.finish();
  }

  private async numPending(): Promise<number> {
    try {
      const ci = await withTimeout(
        this.handles!.jsm.consumers.info(this.stream, this.consumer!),
        INFO_DEADLINE_MS,
        'JetStream consumer info',
      );
      return ci.num_pending;
    } catch (err) {
      throw unavailable('JetStream consumer info failed', err);
    }
  }

  /**
   * Deletes the consumer once: an ephemeral consumer otherwise lingers on the server until its inactive
   * threshold.
   */
  private release(): Promise<void> {
    this.closing ??= (async () => {
      this.onRelease?.();
      if (!this.consumer || !this.handles) return;
      try {
        await withTimeout(
          this.handles.jsm.consumers.delete(this.stream, this.consumer),
          DELETE_TIMEOUT_MS,
          'deleting the reader consumer',
        );
      } catch (err) {
        // Not fatal: inactive_threshold removes it server-side.
        this.logger.warn({ err: describeError(err) }, 'could not delete a JetStream reader consumer');
      }
    })();
    return this.closing;
  }
}

/** The reads open on one store: stop() closes those a caller has not closed, so no consumer outlives the store. */
export class JetStreamReaders {
  private readonly open = new Set<EventReader>();

  constructor(
    private readonly stream: string,
    private readonly subjectPrefix: string,
    private readonly logger: StoreLogger,
  ) {}

  async openReader(handles: ReaderHandles, opts: ReadOptions): Promise<EventReader> {
    const filter = narrowFilter(opts.filter, this.subjectPrefix);
    // onRelease may run inside open() already (nothing to read), before `reader` exists.
    const ref: { reader?: JetStreamReader; released?: boolean } = {};
    const onRelease = () => {
      ref.released = true;
      if (ref.reader) this.open.delete(ref.reader);
    };
    ref.reader = await JetStreamReader.open(handles, this.stream, filter, opts, this.logger, onRelease);
    if (!ref.released) this.open.add(ref.reader);
    return ref.reader;
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.open].map((r) => r.close()));
  }
}
