/**
 * The fan-out's public shapes: one delivery shape for every transport (the wire shapes live in src/protocol),
 * the sink a transport implements, and the subscription handle it gets back. Pure: no Nest, NATS or socket import.
 */
import type { GapNotice, SubscribeErrorCode, WireDelivery as ProtocolDelivery } from '../protocol/index.js';

export type { GapNotice };

/** One event as sent to a client (`WireDelivery`), plus its envelope's JSON text. The transport adds its own `subscription` id. */
export interface Delivery {
  cursor: string;
  seq: number;
  subject: string;
  /** The CloudEvent envelope (parsed from `json` when read: nothing on the hot paths reads it). */
  readonly event: unknown;
  /**
   * The envelope as JSON text, as stored: transports splice it into their frames, so an envelope is never
   * parsed and serialised again on its way to a client. Not part of the wire shape.
   */
  readonly json: string;
  /**
   * The same envelope as UTF-8 bytes, on a catch-up page's deliveries (stored-delivery.ts): a transport copies
   * these into its frames instead of `json`, which is then never decoded. Absent on live deliveries.
   */
  readonly bytes?: Uint8Array;
  /**
   * Set on a catch-up page's deliveries whose cursor is exactly `<cursorEpoch>_<seq>` (a checked epoch, a safe
   * integer seq ≥ 0): a transport may then write the cursor from the epoch's bytes and the seq, without reading
   * the cursor string. Absent on live deliveries.
   */
  readonly cursorEpoch?: string;
}

/** What a client receives for one event, before the transport adds `subscription`. */
export type WireDelivery = ProtocolDelivery<unknown>;

/**
 * What a transport gives the hub for one subscription. Several subscriptions may share one sink's socket; the
 * hub never awaits a sink, it only reads `backlog()` and waits on `onceDrained` to bound per-client memory.
 */
export interface DeliverySink {
  /** Writes one delivery to the client (non-blocking). */
  send(delivery: Delivery): void;
  gap(notice: GapNotice): void;
  /** Deliveries written but not yet flushed to the client's socket (transport's own queue, corked ones included). */
  backlog(): number;
  /**
   * Optional: the bytes behind `backlog()` (and anything else the connection has queued and not flushed). The hub
   * holds it under its byte budget as it holds `backlog()` under its event bound.
   */
  backlogBytes?(): number;
  /**
   * Optional: the client connection this sink writes to. Subscriptions of one connection share it, so replay
   * slots are capped and shared fairly per connection. Absent: the sink is its own connection.
   */
  readonly owner?: object;
  /**
   * Optional: the client has not drained its backlog for the hub's slow-consumer timeout. The transport closes the
   * connection with reason `slow_consumer` (the client resumes by cursor). May be called more than once.
   */
  slowConsumer?(): void;
  /**
   * Optional: hold the sends that follow until `uncork()`, then write them as one batch (a catch-up page).
   * Calls nest; only the outermost uncork writes. The hub uncorks in the same tick it corked.
   */
  cork?(): void;
  uncork?(): void;
  /**
   * Registers a one-shot callback for when the backlog is (nearly) flushed. Must also fire (soon, not
   * synchronously) when the backlog is already low at registration time.
   */
  onceDrained(cb: () => void): void;
}

export interface Subscription {
  /** Unique per process, e.g. `s12`. */
  readonly id: string;
  /** The position the subscription starts AFTER (for the ack). */
  readonly startCursor: string;
  /** Phase 2: emits the gap notice if any, then catch-up, then live. */
  begin(): void;
  /** Unregisters; aborts any catch-up in flight (its reader closed). Idempotent. */
  close(): void;
  /** Cursor of the last delivery sent (or startCursor). */
  readonly cursor: string;
}

export type SubscriptionMode = 'pending' | 'catchup' | 'live' | 'closed';

/** Introspection for tests and metrics. */
export interface SubscriptionDebug {
  mode: SubscriptionMode;
  /** True while catching up because the sink fell behind (or the live tap jumped). */
  lagging: boolean;
  /** Live events held in the hand-off buffer (never more than clientBufferEvents). */
  buffered: number;
  lastSent: number;
  scanned: number;
  readerOpen: boolean;
}

/** The refusals the hub itself makes; the transports check the rest of SubscribeErrorCode before it. */
export type HubSubscribeErrorCode = Extract<SubscribeErrorCode, 'invalid_cursor' | 'unavailable'>;

export class SubscribeError extends Error {
  constructor(
    readonly code: HubSubscribeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SubscribeError';
  }
}

/** Optional counters the metrics module plugs in (no prom-client import here). */
export interface FanoutMetrics {
  /** Deliveries sent to sinks (live and catch-up). */
  delivered?(n: number): void;
  /** Deliveries sent by a catch-up (ring or store). */
  replayed?(n: number): void;
  /** Gap notices sent. */
  gap?(): void;
  /** A live subscription fell behind its sink's bound and switched to catching up. */
  slowConsumer?(): void;
  /** A connection stayed behind for the slow-consumer timeout and was asked to close (once per connection). */
  slowConsumerClosed?(): void;
  /** One event arrived on the live tap; `storeTimeMs` is when the store accepted it (for end-to-end lag). */
  liveEvent?(seq: number, storeTimeMs: number): void;
}

export interface FanoutLogger {
  warn(o: object, m?: string): void;
  error(o: object, m?: string): void;
}
