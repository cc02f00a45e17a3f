/**
 * A paged catch-up read over one short-lived ordered consumer, and the registry of a store's open reads.
 * JetStream never says "end of stream" to a pull: one for more than is stored waits until it expires, and a
 * consume() with nothing pending blocks forever. So the read is complete when nothing is pending (from the
 * consumer's create response, then each message's `info.pending`) or `untilSeq` is reached, and a wait that
 * sees no message for a while asks the server whether anything is still pending. The consumer is deleted as
 * soon as the read completes, and on close().
 *
 * Messages stream in through one consume(): it asks for more while the last batch is still arriving, so a
 * catch-up never waits a round trip between batches (a fetch per batch left the gateway idle more than half
 * the time). A pump moves them into a queue the caller takes whole pages from, one await per page; it stops
 * pulling when the queue is full, and consume() only asks the server for more as its messages are taken, so
 * a slow client holds at most a queue and a batch in memory.
 */
import {
  DeliverPolicy,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from '@nats-io/jetstream';
import type { EventReader, ReadOptions, StoredEvent } from '../event-store.port.js';
import { StoreUnavailableError } from '../event-store.port.js';
import { describeError, unavailable, withTimeout, type StoreLogger } from './jetstream-util.js';
import { narrowFilter } from './subject-filter.js';

/** How long a read waits for a message the pending count promised, before asking the server again. */
const IDLE_CHECK_MS = 2_000;
/** Client-side bound on one consumer info request. */
const INFO_DEADLINE_MS = 5_000;
const DELETE_TIMEOUT_MS = 2_000;
/** Messages consume() keeps asked for; it asks again when a quarter of them arrived. */
const READ_AHEAD = 2_048;
/** Events the pump queues ahead of the caller before it stops taking messages. */
const QUEUE_HIGH_WATER = 4_096;
/** Idle checks in a row that found messages pending although none arrive, before giving up. */
const MAX_IDLE_CHECKS = 3;

/**
 * One event of a read. `time` is worked out only when asked for: a catch-up never needs it, and parsing the
 * timestamp out of every message's reply subject was ~4 % of a catch-up's CPU.
 */
class ReadEvent implements StoredEvent {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly #msg: JsMsg;

  constructor(m: JsMsg) {
    this.seq = m.seq;
    this.subject = m.subject;
    this.data = m.data;
    this.#msg = m;
  }

  get time(): number {
    // The bigint getter is exact; `info.timestampNanos` is a lossy number.
    return Number(this.#msg.timestampNanos / 1_000_000n);
  }
}

export class JetStreamReader implements EventReader {
  /** No more messages will be queued (complete, failed or closed). */
  private done = false;
  private closed = false;
  private closing?: Promise<void>;
  private messages?: ConsumerMessages;
  /** Events received and not yet handed out; `head` is the first one still to hand out. */
  private queue: StoredEvent[] = [];
  private head = 0;
  private failure?: unknown;
  /** Events the waiting next() asked for: the pump wakes it once that many are queued (or the read ends). */
  private want = 0;
  /** Wakes next() when the pump queued events, finished or failed. */
  private wakeReader?: () => void;
  /** Wakes the pump when next() took events from a full queue. */
  private wakePump?: () => void;

  private constructor(
    private readonly consumer: Consumer | undefined,
    private pending: number,
    private readonly untilSeq: number,
    private readonly logger: StoreLogger,
    private readonly onRelease?: () => void,
  ) {
    if (!consumer || pending === 0) this.done = true;
  }

  /**
   * `filter` must already be narrowed to the stream's subjects; null means nothing can match.
   * `onRelease` runs once, when the consumer is given up (read complete or closed).
   */
  static async open(
    js: JetStreamClient,
    stream: string,
    filter: string | null,
    opts: ReadOptions,
    logger: StoreLogger,
    onRelease?: () => void,
  ): Promise<JetStreamReader> {
    const fromSeq = Math.max(1, Math.floor(opts.fromSeq));
    if (filter === null || fromSeq > opts.untilSeq) return new JetStreamReader(undefined, 0, opts.untilSeq, logger);
    let consumer: Consumer;
    try {
      consumer = await js.consumers.get(stream, {
        filter_subjects: filter,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: fromSeq,
        inactive_threshold: 30_000,
      });
    } catch (err) {
      throw unavailable('opening a JetStream reader failed', err);
    }
    const pending = (await consumer.info(true)).num_pending;
    const reader = new JetStreamReader(consumer, pending, opts.untilSeq, logger, onRelease);
    if (pending === 0) await reader.release();
    else await reader.start();
    return reader;
  }

  async next(maxEvents: number): Promise<StoredEvent[]> {
    const max = Math.max(1, Math.floor(maxEvents));
    let idleChecks = 0;
    // A full page unless the read ends first: one await per page, not per message.
    while (this.queue.length - this.head < max && !this.done && !this.closed) {
      this.want = max;
      this.wakePump?.();
      const woken = await this.arrival();
      this.want = 0;
      if (woken) {
        idleChecks = 0;
        continue;
      }
      // Nothing arrived for a while: hand out what there is, or ask whether the pending count overestimates
      // (e.g. retention removed messages).
      if (this.done || this.head < this.queue.length) break;
      if ((await this.numPending()) === 0) this.finish();
      else if (++idleChecks >= MAX_IDLE_CHECKS) {
        this.fail(new StoreUnavailableError('JetStream reader: messages are pending but none arrive'));
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
    this.wakePump?.();
    if (this.done && this.head === this.queue.length) await this.release();
    return page;
  }

  close(): Promise<void> {
    this.closed = true;
    this.finish();
    this.queue = [];
    this.head = 0;
    this.wakePump?.();
    return this.release();
  }

  private async start(): Promise<void> {
    let messages: ConsumerMessages;
    try {
      messages = await this.consumer!.consume({ max_messages: READ_AHEAD, expires: IDLE_CHECK_MS * 5 });
    } catch (err) {
      throw unavailable('JetStream consume failed', err);
    }
    this.messages = messages;
    this.pump(messages).catch((err: unknown) => this.fail(unavailable('JetStream consume failed', err)));
  }

  /** Moves messages into the queue until the read is complete, pausing while the queue is full. */
  private async pump(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      if (this.done) break;
      this.queue.push(new ReadEvent(m));
      this.pending = m.info.pending;
      if (m.seq >= this.untilSeq || this.pending === 0) {
        this.finish();
        break;
      }
      const queued = this.queue.length - this.head;
      if (this.want > 0 && queued >= this.want) this.wakeReader?.();
      if (queued >= Math.max(QUEUE_HIGH_WATER, this.want)) {
        await new Promise<void>((resolve) => (this.wakePump = resolve));
        this.wakePump = undefined;
      }
    }
    // Ending short of the read's end (e.g. the consumer vanished) must not look like the end of the stream.
    if (!this.done) this.fail(new StoreUnavailableError('JetStream reader: the consumer stopped early'));
  }

  /** True when the pump woke us, false after IDLE_CHECK_MS without news. */
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

  /** No more messages: stops consume() (its outstanding pull would otherwise wait for new events). */
  private finish(): void {
    if (this.done && !this.messages) return;
    this.done = true;
    this.messages?.stop();
    this.messages = undefined;
    this.wakeReader?.();
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.failure ??= err;
    this.finish();
  }

  private async numPending(): Promise<number> {
    try {
      return (await withTimeout(this.consumer!.info(), INFO_DEADLINE_MS, 'JetStream consumer info')).num_pending;
    } catch (err) {
      throw unavailable('JetStream consumer info failed', err);
    }
  }

  /**
   * Deletes the consumer once: closing the iterator does not delete it, and an ordered consumer otherwise lingers
   * on the server for minutes after its last use.
   */
  private release(): Promise<void> {
    this.closing ??= (async () => {
      this.onRelease?.();
      if (!this.consumer) return;
      try {
        await withTimeout(this.consumer.delete(), DELETE_TIMEOUT_MS, 'deleting the reader consumer');
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

  async openReader(js: JetStreamClient, opts: ReadOptions): Promise<EventReader> {
    const filter = narrowFilter(opts.filter, this.subjectPrefix);
    // onRelease may run inside open() already (nothing to read), before `reader` exists.
    const ref: { reader?: JetStreamReader; released?: boolean } = {};
    const onRelease = () => {
      ref.released = true;
      if (ref.reader) this.open.delete(ref.reader);
    };
    ref.reader = await JetStreamReader.open(js, this.stream, filter, opts, this.logger, onRelease);
    if (!ref.released) this.open.add(ref.reader);
    return ref.reader;
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.open].map((r) => r.close()));
  }
}
