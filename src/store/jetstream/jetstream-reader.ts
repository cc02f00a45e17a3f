/**
 * A paged catch-up read over one short-lived ordered consumer, and the registry of a store's open reads.
 * JetStream never says "end of stream" to a fetch: a fetch for more than is stored waits until it
 * expires, and a consume() with nothing pending blocks forever. So each page asks for at most what is known to be pending (from the consumer's
 * create response, then each message's `info.pending`), and the read is complete when nothing is pending
 * or `untilSeq` is reached. The consumer is deleted as soon as the read completes, and on close(). The next
 * page is fetched while the caller works on the current one, so a catch-up does not wait a round trip per page.
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

/** Server-side wait of one fetch; only reached when the pending count overestimates (e.g. retention removed messages). */
const FETCH_EXPIRES_MS = 2_000;
/** Client-side bound on one fetch, in case the server goes away mid-fetch and never answers. */
const FETCH_DEADLINE_MS = FETCH_EXPIRES_MS + 3_000;
const DELETE_TIMEOUT_MS = 2_000;
/** Events asked for per fetch (at least a caller's page): one round trip per 1,024 events, not per page. */
const READ_AHEAD = 1_024;
/** Fetches that came back empty although the server said messages were pending, before giving up. */
const MAX_EMPTY_FETCHES = 3;

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
  private done = false;
  private closing?: Promise<void>;
  private current?: ConsumerMessages;
  /** The next page, asked for as soon as the previous one arrived. */
  private prefetched?: Promise<StoredEvent[]>;
  /** Events fetched beyond what the caller asked for (a prefetched page and a smaller `maxEvents`). */
  private leftover: StoredEvent[] = [];

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
    return reader;
  }

  async next(maxEvents: number): Promise<StoredEvent[]> {
    const max = Math.max(1, Math.floor(maxEvents));
    const batch = Math.max(max, READ_AHEAD);
    let emptyFetches = 0;
    while (this.leftover.length === 0 && (this.prefetched || !this.done)) {
      let got: StoredEvent[];
      if (this.prefetched) {
        const ahead = this.prefetched;
        this.prefetched = undefined;
        got = await ahead;
      } else {
        if (this.pending <= 0) {
          // The last known count ran out or was wrong; ask the server once before declaring the end.
          this.pending = await this.numPending();
          if (this.pending === 0) break;
        }
        got = await this.fetchPage(Math.min(batch, this.pending));
      }
      if (got.length === 0 && ++emptyFetches >= MAX_EMPTY_FETCHES) {
        throw new StoreUnavailableError('JetStream reader: messages are pending but none arrive');
      }
      if (got.length === 0) this.pending = 0;
      this.leftover = got;
    }
    const page = this.leftover.length <= max ? this.leftover : this.leftover.slice(0, max);
    this.leftover = page === this.leftover ? [] : this.leftover.slice(max);
    if (this.pending === 0) this.done = true;
    if (this.done) {
      if (this.leftover.length === 0 && !this.prefetched) await this.release();
    } else if (!this.prefetched && this.leftover.length <= batch - max) {
      // Ask for more now, so it streams in while the caller sends out what it has.
      const ahead = this.fetchPage(Math.min(batch, this.pending));
      ahead.catch(() => undefined); // surfaced by the next call, which awaits it
      this.prefetched = ahead;
    }
    return page;
  }

  close(): Promise<void> {
    this.done = true;
    this.leftover = [];
    this.current?.stop();
    this.prefetched = undefined;
    return this.release();
  }

  private async fetchPage(batch: number): Promise<StoredEvent[]> {
    const page: StoredEvent[] = [];
    if (this.done) return page;
    const consumer = this.consumer!;
    let iter: ConsumerMessages;
    try {
      iter = await consumer.fetch({ max_messages: batch, expires: FETCH_EXPIRES_MS });
    } catch (err) {
      throw unavailable('JetStream fetch failed', err);
    }
    if (this.done) {
      // Closed while the fetch was being set up.
      iter.stop();
      return page;
    }
    this.current = iter;
    const timer = setTimeout(
      () => iter.stop(new StoreUnavailableError(`JetStream fetch: no answer within ${FETCH_DEADLINE_MS} ms`)),
      FETCH_DEADLINE_MS,
    );
    try {
      for await (const m of iter) {
        page.push(new ReadEvent(m));
        this.pending = m.info.pending;
        if (m.seq >= this.untilSeq) {
          this.done = true;
          break;
        }
      }
    } catch (err) {
      throw unavailable('JetStream fetch failed', err);
    } finally {
      clearTimeout(timer);
      iter.stop();
      this.current = undefined;
    }
    return page;
  }

  private async numPending(): Promise<number> {
    try {
      return (await withTimeout(this.consumer!.info(), FETCH_DEADLINE_MS, 'JetStream consumer info')).num_pending;
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
