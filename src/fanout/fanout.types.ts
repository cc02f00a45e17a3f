/**
 * The fan-out's public shapes (DESIGN.md §5): one delivery shape for every transport, the gap notice, and the
 * sink a transport implements. Pure: no Nest, NATS or socket import.
 */

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
}

/** What a client receives for one event (DESIGN.md §5), before the transport adds `subscription`. */
export type WireDelivery = Omit<Delivery, 'json'>;

/** Sent first when the events right after the requested position are gone (retention, purge, new epoch). */
export interface GapNotice {
  /** The cursor the subscription asked for (or had reached). */
  from: string;
  /** Where it continues from: just before the oldest event still stored. */
  resumeCursor: string;
}

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

export type SubscribeErrorCode = 'invalid_cursor' | 'unavailable';

export class SubscribeError extends Error {
  constructor(
    readonly code: SubscribeErrorCode,
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
