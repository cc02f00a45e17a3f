/**
 * `GET /v1/stats`'s body (src/protocol/stats.ts), read from the same prom-client metrics `/metrics` serves (each
 * metric's `get()`, which runs its collect hook as a scrape does): no second set of counters to drift from them.
 */
import type { Gauge } from 'prom-client';
import type { StatsBody } from '../protocol/stats.js';
import type { MetricsService } from './metrics.service.js';

type Values = { value: number; labels: Record<string, string | number | undefined>; metricName?: string }[];

const sum = (values: Values, match: (labels: Values[number]['labels']) => boolean = () => true): number =>
  values.reduce((n, v) => (match(v.labels) ? n + v.value : n), 0);

async function gauge(g: Gauge | undefined): Promise<number> {
  return g ? sum((await g.get()).values) : 0;
}

export async function readStats(m: MetricsService, now: () => number = Date.now): Promise<StatsBody> {
  const [ingest, deliveries, outbound, clients, running, waiting, lag] = await Promise.all([
    m.ingest.get(),
    m.deliveries.get(),
    m.outboundAttempts.get(),
    m.clients.get(),
    gauge(m.replaysRunning),
    gauge(m.replaysWaiting),
    m.lag.get(),
  ]);
  const lagValues = lag.values as Values;
  const byName = (suffix: string) => lagValues.filter((v) => v.metricName === `${lag.name}${suffix}`);
  return {
    atMs: now(),
    uptimeSeconds: Math.round(process.uptime()),
    ingest: (ingest.values as Values)
      .map((v) => ({ source: String(v.labels.source), outcome: String(v.labels.outcome), total: v.value }))
      .sort((a, b) => a.source.localeCompare(b.source) || a.outcome.localeCompare(b.outcome)),
    deliveries: {
      socketio: sum(deliveries.values, (l) => l.transport === 'socketio'),
      sse: sum(deliveries.values, (l) => l.transport === 'sse'),
      webhooks: sum(outbound.values, (l) => l.outcome === 'delivered'),
    },
    clients: {
      socketio: sum(clients.values, (l) => l.transport === 'socketio'),
      sse: sum(clients.values, (l) => l.transport === 'sse'),
    },
    replays: { running, waiting },
    lag: {
      count: sum(byName('_count')),
      sumSeconds: sum(byName('_sum')),
      buckets: byName('_bucket')
        .filter((v) => v.labels.le !== '+Inf')
        .map((v) => ({ le: Number(v.labels.le), count: v.value })),
    },
  };
}
