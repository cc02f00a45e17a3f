/**
 * A paged catch-up read over one short-lived ordered consumer.
 * JetStream never says "end of stream" to a fetch: a fetch for more than is stored waits until it
 * expires (pitfall 10). So each page asks for at most what is known to be pending (from the consumer's
 * create response, then each message's `info.pending`), and the read is complete when nothing is pending
 * or `untilSeq` is reached. The consumer is deleted as soon as the read completes, and on close().
 */
import { DeliverPolicy, type Consumer, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { EventReader, ReadOptions, StoredEvent } from '../event-store.port.js';
import { StoreUnavailableError } from '../event-store.port.js';
import { describeError, toStoredEvent, unavailable, withTimeout, type StoreLogger } from './jetstream-util.js';

/** Server-side wait of one fetch; only reached when the pending count overestimates (e.g. retention removed messages). */
const FETCH_EXPIRES_MS = 2_000;
/** Client-side bound on one fetch, in case the server goes away mid-fetch and never answers. */
const FETCH_DEADLINE_MS = FETCH_EXPIRES_MS + 3_000;
const DELETE_TIMEOUT_MS = 2_000;
/** Fetches that came back empty although the server said messages were pending, before giving up. */
const MAX_EMPTY_FETCHES = 3;

export class JetStreamReader implements EventReader {
  private done = false;
  private closing?: Promise<void>;
  private current?: ConsumerMessages;

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
    const page: StoredEvent[] = [];
    let emptyFetches = 0;
    while (!this.done && page.length === 0) {
      if (this.pending <= 0) {
        // The last known count ran out or was wrong; ask the server once before declaring the end.
        this.pending = await this.numPending();
        if (this.pending === 0) break;
      }
      await this.fetchPage(Math.min(max, this.pending), page);
      if (page.length === 0 && ++emptyFetches >= MAX_EMPTY_FETCHES) {
        throw new StoreUnavailableError('JetStream reader: messages are pending but none arrive');
      }
      if (page.length === 0) this.pending = 0;
    }
    if (this.pending === 0) this.done = true;
    if (this.done) await this.release();
    return page;
  }

  close(): Promise<void> {
    this.done = true;
    this.current?.stop();
    return this.release();
  }

  private async fetchPage(batch: number, page: StoredEvent[]): Promise<void> {
    const consumer = this.consumer!;
    let iter: ConsumerMessages;
    try {
      iter = await consumer.fetch({ max_messages: batch, expires: FETCH_EXPIRES_MS });
    } catch (err) {
      throw unavailable('JetStream fetch failed', err);
    }
    this.current = iter;
    const timer = setTimeout(
      () => iter.stop(new StoreUnavailableError(`JetStream fetch: no answer within ${FETCH_DEADLINE_MS} ms`)),
      FETCH_DEADLINE_MS,
    );
    try {
      for await (const m of iter) {
        page.push(toStoredEvent(m));
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
  }

  private async numPending(): Promise<number> {
    try {
      return (await withTimeout(this.consumer!.info(), FETCH_DEADLINE_MS, 'JetStream consumer info')).num_pending;
    } catch (err) {
      throw unavailable('JetStream consumer info failed', err);
    }
  }

  /** Deletes the consumer once (pitfall 11: ordered consumers otherwise linger on the server). */
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
