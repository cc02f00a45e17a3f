/**
 * Delivery queues (delivery-queue.port.ts) on JetStream: one durable pull consumer per queue, explicit ack,
 * `max_ack_pending` = the queue's in-flight cap (cluster-wide, whatever the number of gateways pulling), `ack_wait`
 * as crash recovery only, and NAK with a delay for retries. No `backoff` on the consumer: on 2.9 it would distort the
 * NAK delays. The hand-out count is the server's `deliveryCount`, so the schedule survives restarts and replicas.
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  ReplayPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import {
  QUEUE_NAME,
  type DeliveryItem,
  type DeliveryQueue,
  type DeliveryQueueOptions,
  type DeliveryQueues,
  type DeliveryQueueState,
} from '../delivery-queue.port.js';
import { nanos, toStoredEvent, unavailable, withTimeout } from './jetstream-util.js';
import { narrowFilter } from './subject-filter.js';

const ADMIN_TIMEOUT_MS = 5_000;
/** Durable names carry this prefix so operators can tell them from other consumers. */
export const DELIVERY_CONSUMER_PREFIX = 'hs_out_';
/** A pull request cannot expire sooner on the client. */
const MIN_FETCH_WAIT_MS = 1_000;

export interface JetStreamDeliveryQueuesDeps {
  live: () => { js: JetStreamClient; jsm: JetStreamManager };
  stream: string;
  subjectPrefix: string;
  replicas: number;
}

function isConsumerNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound;
}

export class JetStreamDeliveryQueues implements DeliveryQueues {
  constructor(private readonly deps: JetStreamDeliveryQueuesDeps) {}

  private config(name: string, o: DeliveryQueueOptions): ConsumerConfig {
    const filter = narrowFilter(o.filter, this.deps.subjectPrefix) ?? `${this.deps.subjectPrefix}.>`;
    return {
      durable_name: DELIVERY_CONSUMER_PREFIX + name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, o.startSeq),
      filter_subject: filter,
      max_ack_pending: o.maxInFlight,
      ack_wait: nanos(o.ackWaitMs),
      max_deliver: -1,
      replay_policy: ReplayPolicy.Instant,
      num_replicas: this.deps.replicas,
    } as ConsumerConfig;
  }

  async open(name: string, options: DeliveryQueueOptions): Promise<DeliveryQueue> {
    if (!QUEUE_NAME.test(name)) throw new RangeError(`invalid queue name ${JSON.stringify(name)}`);
    const { js, jsm } = this.deps.live();
    const wanted = this.config(name, options);
    const durable = wanted.durable_name!;
    try {
      let info: ConsumerInfo;
      try {
        info = await withTimeout(jsm.consumers.info(this.deps.stream, durable), ADMIN_TIMEOUT_MS, 'consumer info');
        const c = info.config;
        if (
          c.filter_subject !== wanted.filter_subject ||
          c.max_ack_pending !== wanted.max_ack_pending ||
          c.ack_wait !== wanted.ack_wait
        ) {
          await withTimeout(
            jsm.consumers.update(this.deps.stream, durable, {
              filter_subject: wanted.filter_subject,
              max_ack_pending: wanted.max_ack_pending,
              ack_wait: wanted.ack_wait,
            }),
            ADMIN_TIMEOUT_MS,
            'consumer update',
          );
        }
      } catch (err) {
        if (!isConsumerNotFound(err)) throw err;
        await withTimeout(jsm.consumers.add(this.deps.stream, wanted), ADMIN_TIMEOUT_MS, 'consumer create');
      }
      const consumer = await withTimeout(js.consumers.get(this.deps.stream, durable), ADMIN_TIMEOUT_MS, 'consumer get');
      return new JetStreamQueue(consumer, () => this.deps.live().jsm, this.deps.stream, durable);
    } catch (err) {
      throw unavailable(`opening delivery queue ${name}`, err);
    }
  }

  async delete(name: string): Promise<void> {
    const { jsm } = this.deps.live();
    try {
      await withTimeout(
        jsm.consumers.delete(this.deps.stream, DELIVERY_CONSUMER_PREFIX + name),
        ADMIN_TIMEOUT_MS,
        'consumer delete',
      );
    } catch (err) {
      if (isConsumerNotFound(err)) return;
      throw unavailable(`deleting delivery queue ${name}`, err);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const { jsm } = this.deps.live();
    const out: string[] = [];
    try {
      for await (const name of jsm.consumers.list(this.deps.stream)) {
        const durable = name.config.durable_name ?? name.name;
        if (durable.startsWith(DELIVERY_CONSUMER_PREFIX + prefix))
          out.push(durable.slice(DELIVERY_CONSUMER_PREFIX.length));
      }
    } catch (err) {
      throw unavailable('listing delivery queues', err);
    }
    return out.sort();
  }
}

class JetStreamQueue implements DeliveryQueue {
  constructor(
    private readonly consumer: Consumer,
    private readonly jsm: () => JetStreamManager,
    private readonly stream: string,
    private readonly durable: string,
  ) {}

  async fetch(max: number, waitMs: number): Promise<DeliveryItem[]> {
    const items: DeliveryItem[] = [];
    try {
      // A pull for `max` messages is answered only when `max` have come or it expires: with a quiet endpoint that
      // held every event for the whole expiry. So: wait for the first, then pull only what the consumer says is
      // waiting behind it (never-delivered messages are deliverable at once), which comes back without waiting.
      const first = await this.consumer.next({ expires: Math.max(MIN_FETCH_WAIT_MS, waitMs) });
      if (!first) return items;
      items.push(toItem(first));
      const behind = Math.min(max - 1, first.info.pending);
      if (behind > 0) {
        const batch = await this.consumer.fetch({ max_messages: behind, expires: MIN_FETCH_WAIT_MS });
        for await (const m of batch) items.push(toItem(m));
      }
    } catch (err) {
      if (items.length) return items;
      throw unavailable(`fetching from ${this.durable}`, err);
    }
    return items;
  }

  async state(): Promise<DeliveryQueueState> {
    try {
      const info = await withTimeout(
        this.jsm().consumers.info(this.stream, this.durable),
        ADMIN_TIMEOUT_MS,
        'consumer info',
      );
      return { backlog: info.num_pending, inFlight: info.num_ack_pending, lastHandedOut: info.delivered.stream_seq };
    } catch (err) {
      throw unavailable(`reading delivery queue ${this.durable}`, err);
    }
  }
}

function toItem(m: JsMsg): DeliveryItem {
  const e = toStoredEvent(m);
  return {
    ...e,
    attempt: m.info.deliveryCount,
    ack: async () => {
      // Confirmed: an ack lost on the way would hand the event out again after ack_wait (a duplicate).
      await m.ackAck({ timeout: 5_000 }).catch((err: unknown) => {
        throw unavailable('ack', err);
      });
    },
    retry: async (delayMs: number) => m.nak(Math.max(1, Math.round(delayMs))),
    // No reason: nats-server 2.9 ignores a +TERM that carries one.
    drop: async () => m.term(),
  };
}
