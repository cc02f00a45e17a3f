/**
 * The body of `GET /v1/stats`: the numbers `/metrics` exposes for a live overview, as JSON. Counters are totals
 * since the process started (a reader derives rates from two reads, as Prometheus' `rate()` does); gauges are
 * current values; the lag histogram comes with its cumulative buckets, so a reader can take quantiles over any
 * window.
 */

/** Totals of `hookstream_ingest_total`, one per `{source, outcome}` seen. */
export interface IngestTotal {
  source: string;
  outcome: string;
  total: number;
}

/** One cumulative bucket of a histogram: observations ≤ `le` seconds. The `+Inf` bucket is `count`. */
export interface HistogramBucket {
  le: number;
  count: number;
}

export interface StatsBody {
  /** When the numbers were read, in ms since the epoch (the gateway's clock). */
  atMs: number;
  /** Seconds since the process started. */
  uptimeSeconds: number;
  ingest: IngestTotal[];
  /**
   * Deliveries since start: events written to Socket.IO and SSE subscribers (`hookstream_deliveries_total`),
   * and outbound webhooks answered 2xx (`hookstream_outbound_attempts_total{outcome="delivered"}`, all endpoints).
   */
  deliveries: { socketio: number; sse: number; webhooks: number };
  /** Connected subscriber clients now (`hookstream_connected_clients`). */
  clients: { socketio: number; sse: number };
  /** Catch-up reads from the store now: running, and waiting for a slot (`hookstream_replays_*`). */
  replays: { running: number; waiting: number };
  /** `hookstream_end_to_end_lag_seconds`: store accepted → live tap dispatched. */
  lag: { count: number; sumSeconds: number; buckets: HistogramBucket[] };
}
