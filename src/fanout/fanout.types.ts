/**
 * The fan-out's public shapes: one delivery shape for every transport (the wire shapes live in src/protocol),
 * and the sink a transport implements. Pure: no Nest, NATS or socket import.
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
  /** One event arrived on the live tap; `storeTimeMs` is when the store accepted it (for end-to-end lag). */
  liveEvent?(seq: number, storeTimeMs: number): void;
}

export interface FanoutLogger {
  warn(o: object, m?: string): void;
  error(o: object, m?: string): void;
}
