/** Prometheus metrics (docs/operations.md), on one registry per app instance (tests boot several). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class MetricsService {
  readonly registry = new Registry();
  readonly ingest = new Counter({
    name: 'hookstream_ingest_total',
    help: 'Webhooks and first-party events received, by source and outcome',
    labelNames: ['source', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly publishLatency = new Histogram({
    name: 'hookstream_publish_duration_seconds',
    help: 'Time from the append request to the store confirming it durable',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly clients = new Gauge({
    name: 'hookstream_connected_clients',
    help: 'Connected subscriber clients, by transport',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  /**
   * Events handed to subscribers' connections, per transport: plain numbers the outboxes add to (a labelled
   * `inc()` per delivery would cost more than the write), published at each scrape.
   */
  readonly delivered = { socketio: 0, sse: 0 };
  readonly deliveries = new Counter({
    name: 'hookstream_deliveries_total',
    help: 'Events written to subscribers (live and catch-up), by transport',
    labelNames: ['transport'] as const,
    registers: [this.registry],
    collect: () => {
      this.deliveries.reset();
      this.deliveries.inc({ transport: 'socketio' }, this.delivered.socketio);
      this.deliveries.inc({ transport: 'sse' }, this.delivered.sse);
    },
  });
  readonly replayed = new Counter({
    name: 'hookstream_replayed_events_total',
    help: 'Events delivered by catch-up (from the ring or the store)',
    registers: [this.registry],
  });
  readonly gaps = new Counter({
    name: 'hookstream_gaps_total',
    help: 'Gap notices sent (a cursor whose successors are no longer stored)',
    registers: [this.registry],
  });
  readonly slowConsumers = new Counter({
    name: 'hookstream_slow_consumer_fallbacks_total',
    help: 'Subscriptions that fell back from live to catch-up because the client did not read fast enough',
    registers: [this.registry],
  });
  readonly slowConsumerCloses = new Counter({
    name: 'hookstream_slow_consumer_closes_total',
    help: 'Connections closed with reason slow_consumer: they stayed behind their buffer bounds too long',
    registers: [this.registry],
  });
  readonly lag = new Histogram({
    name: 'hookstream_end_to_end_lag_seconds',
    help: 'Time from the store accepting an event to the live tap dispatching it',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly liveSeq = new Gauge({
    name: 'hookstream_live_sequence',
    help: 'Stream sequence of the last event dispatched by this process',
    registers: [this.registry],
  });

  readonly outboundAttempts = new Counter({
    name: 'hookstream_outbound_attempts_total',
    help: 'Outbound webhook attempts, by endpoint and outcome (delivered, failed, gone, dead)',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly outboundLatency = new Histogram({
    name: 'hookstream_outbound_delivery_latency_seconds',
    help: 'Time from the store accepting an event to its delivery (2xx) to an endpoint',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600, 36000],
    registers: [this.registry],
  });

  /** The hooks the outbound delivery worker reports through. */
  outboundHooks() {
    return {
      attempt: (endpoint: string, outcome: 'delivered' | 'failed' | 'gone' | 'dead', storedAtMs: number) => {
        this.outboundAttempts.inc({ endpoint, outcome });
        if (outcome === 'delivered') this.outboundLatency.observe(Math.max(0, Date.now() - storedAtMs) / 1000);
      },
    };
  }

  /** Pending and dead events per endpoint, and disabled endpoints, read at each scrape. */
  watchOutbound(read: () => Promise<{ id: string; status: string; pending: number; dead: number }[]>): void {
    const snapshot = { at: 0, reading: false, value: Promise.resolve([] as Awaited<ReturnType<typeof read>>) };
    // One read serves the three gauges of a scrape: fresh for a second after it ends (a read counted from its start
    // went stale before the next gauge asked once it took over a second, as with 1,000 endpoints, and ran again).
    const current = () => {
      if (!snapshot.reading && Date.now() - snapshot.at > 1_000) {
        snapshot.reading = true;
        snapshot.value = read()
          .catch(() => [])
          .finally(() => {
            snapshot.reading = false;
            snapshot.at = Date.now();
          });
      }
      return snapshot.value;
    };
    new Gauge({
      name: 'hookstream_outbound_pending',
      help: 'Events waiting to be delivered, per endpoint',
      labelNames: ['endpoint'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const e of await current()) this.set({ endpoint: e.id }, e.pending);
      },
    });
    new Gauge({
      name: 'hookstream_outbound_dead',
      help: 'Dead events (every attempt failed), per endpoint',
      labelNames: ['endpoint'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const e of await current()) this.set({ endpoint: e.id }, e.dead);
      },
    });
    new Gauge({
      name: 'hookstream_outbound_disabled_endpoints',
      help: 'Endpoints currently disabled (manual, gone or failing)',
      registers: [this.registry],
      async collect() {
        this.set((await current()).filter((e) => e.status === 'disabled').length);
      },
    });
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'hookstream_' });
  }

  /** Catch-up reads running and waiting for a slot, read from the fan-out hub at each scrape. */
  watchReplays(read: () => { running: number; waiting: number }): void {
    this.replaysRunning = new Gauge({
      name: 'hookstream_replays_running',
      help: 'Catch-up reads from the store running now (at most limits.concurrentReplays)',
      registers: [this.registry],
      collect() {
        this.set(read().running);
      },
    });
    this.replaysWaiting = new Gauge({
      name: 'hookstream_replays_waiting',
      help: 'Catch-up reads waiting for a slot',
      registers: [this.registry],
      collect() {
        this.set(read().waiting);
      },
    });
  }
  replaysRunning?: Gauge;
  replaysWaiting?: Gauge;

  /** Exposes the store's idempotency records written after the answer (JetStream), read at each scrape. */
  watchIdempotencyRecords(read: () => { pending: number; dropped: number }): void {
    new Gauge({
      name: 'hookstream_idempotency_records_pending',
      help: 'Idempotency records of answered events not yet written to the KV bucket',
      registers: [this.registry],
      collect() {
        this.set(read().pending);
      },
    });
    let counted = 0;
    new Counter({
      name: 'hookstream_idempotency_records_dropped_total',
      help: 'Idempotency records given up (bound reached, or not written by shutdown): dedupe beyond stream.duplicateWindow is lost for them',
      registers: [this.registry],
      collect() {
        const dropped = read().dropped;
        if (dropped > counted) this.inc(dropped - counted);
        counted = dropped;
      },
    });
  }
}
