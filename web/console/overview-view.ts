/**
 * The Overview view (`#/overview`): what the gateway is doing now, read from `GET /v1/stats` with the typed API key
 * once a second and drawn as the last minute: ingest per source and outcome, deliveries per transport, connected
 * clients, replays in progress and end-to-end lag p50/p99. Rates and lag quantiles are taken between two reads
 * (stats-math.ts); the endpoint only serves the totals `/metrics` serves.
 */
import type { StatsBody } from '@hookstream/client';
import { ApiError, apiCall, refusalText, typedKey } from './api.js';
import { Chart, type Series } from './chart.js';
import { $ } from './dom.js';
import { rate, windowQuantile } from './stats-math.js';

const INTERVAL_MS = 1000;
/** Samples kept per series: a minute at one a second. */
const CAPACITY = 60;

const ui = {
  view: $('overview-view'),
  tab: $<HTMLAnchorElement>('tab-overview'),
  message: $('overview-message'),
  uptime: $('overview-uptime'),
  charts: $('overview-charts'),
};

const perSecond = (v: number) => `${v >= 100 ? Math.round(v) : Number(v.toFixed(1))}/s`;
const whole = (v: number) => String(Math.round(v));
const millis = (v: number) => `${v >= 100 ? Math.round(v) : Number(v.toFixed(1))} ms`;

const charts = {
  ingest: new Chart('chart-ingest', 'Ingest by source and outcome', perSecond, CAPACITY),
  deliveries: new Chart('chart-deliveries', 'Deliveries by transport', perSecond, CAPACITY),
  clients: new Chart('chart-clients', 'Connected clients', whole, CAPACITY),
  replays: new Chart('chart-replays', 'Replays in progress', whole, CAPACITY),
  lag: new Chart('chart-lag', 'End-to-end lag', millis, CAPACITY),
};
ui.charts.append(...Object.values(charts).map((c) => c.element));

/** One line's history; `total` is the counter's last total (counters only). */
interface History {
  label: string;
  values: (number | null)[];
  total?: number;
}

type ChartName = keyof typeof charts;

const state = {
  /** Bumped by every open and close: a read or timer of an older generation does nothing. */
  generation: 0,
  timer: undefined as ReturnType<typeof setTimeout> | undefined,
  previous: undefined as StatsBody | undefined,
  samples: 0,
  history: new Map<ChartName, Map<string, History>>(),
};

function overviewState(s: 'loading' | 'live' | 'needs-key' | 'error', message = ''): void {
  document.body.dataset.overview = s;
  ui.message.textContent = message;
  ui.message.dataset.kind = s === 'error' || s === 'needs-key' ? 'error' : 'info';
}

/** Appends one sample per line of a chart; lines absent from this sample get null, new ones are padded. */
function record(chart: ChartName, points: { key: string; label: string; value: number | null; total?: number }[]) {
  let lines = state.history.get(chart);
  if (!lines) state.history.set(chart, (lines = new Map()));
  const seen = new Set<string>();
  for (const p of points) {
    seen.add(p.key);
    let h = lines.get(p.key);
    if (!h)
      lines.set(
        p.key,
        (h = { label: p.label, values: new Array<number | null>(Math.min(state.samples, CAPACITY) - 1).fill(0) }),
      );
    h.values.push(p.value);
    h.total = p.total;
  }
  for (const [key, h] of lines) if (!seen.has(key)) h.values.push(null);
  for (const h of lines.values()) if (h.values.length > CAPACITY) h.values.splice(0, h.values.length - CAPACITY);
}

function render(): void {
  for (const [name, chart] of Object.entries(charts) as [ChartName, Chart][]) {
    const lines = state.history.get(name) ?? new Map<string, History>();
    const series: Series[] = [...lines].map(([key, h]) => ({ key, label: h.label, values: h.values, total: h.total }));
    chart.draw(series);
  }
}

/** Takes one read into the charts; the first read only sets the baseline rates are measured from. */
function take(next: StatsBody): void {
  const prev = state.previous;
  state.previous = next;
  ui.uptime.textContent = `up ${Math.floor(next.uptimeSeconds / 60)} min · read ${new Date(next.atMs).toLocaleTimeString()}`;
  if (!prev) return;
  state.samples++;
  const seconds = (next.atMs - prev.atMs) / 1000;
  const counter = (key: string, label: string, after: number, before: number | undefined) => ({
    key,
    label,
    value: rate(before, after, seconds),
    total: after,
  });
  record(
    'ingest',
    next.ingest.map((i) => {
      const before = prev.ingest.find((p) => p.source === i.source && p.outcome === i.outcome)?.total;
      return counter(`${i.source}/${i.outcome}`, `${i.source} ${i.outcome}`, i.total, before);
    }),
  );
  const d = next.deliveries;
  record('deliveries', [
    counter('socketio', 'Socket.IO', d.socketio, prev.deliveries.socketio),
    counter('sse', 'SSE', d.sse, prev.deliveries.sse),
    counter('webhooks', 'outbound webhooks', d.webhooks, prev.deliveries.webhooks),
  ]);
  record('clients', [
    { key: 'socketio', label: 'Socket.IO', value: next.clients.socketio },
    { key: 'sse', label: 'SSE', value: next.clients.sse },
  ]);
  record('replays', [
    { key: 'running', label: 'running', value: next.replays.running },
    { key: 'waiting', label: 'waiting', value: next.replays.waiting },
  ]);
  const ms = (q: number) => {
    const v = windowQuantile(q, prev.lag, next.lag);
    return v === null ? null : v * 1000;
  };
  record('lag', [
    { key: 'p50', label: 'p50', value: ms(0.5) },
    { key: 'p99', label: 'p99', value: ms(0.99) },
  ]);
  render();
  document.body.dataset.overviewSamples = String(state.samples);
}

async function poll(generation: number): Promise<void> {
  const key = typedKey();
  if (!key) {
    overviewState('needs-key', 'The overview reads GET /v1/stats, which needs an API key: type one in Token above.');
    return;
  }
  const started = Date.now();
  try {
    const stats = await apiCall<StatsBody>('/v1/stats', key);
    if (generation !== state.generation) return;
    take(stats);
    overviewState(state.samples ? 'live' : 'loading', state.samples ? '' : 'Reading…');
  } catch (err) {
    if (generation !== state.generation) return;
    overviewState('error', refusalText(err, { hint: 'The overview needs an API key.' }));
    // A refused key stays refused; anything else (a restart, a 503) is tried again.
    if (err instanceof ApiError && err.status === 401) return;
  }
  // One read a second, however long the read took.
  state.timer = setTimeout(() => void poll(generation), Math.max(0, INTERVAL_MS - (Date.now() - started)));
}

/** The view as the router drives it. */
export const overviewView = {
  element: ui.view,
  tab: ui.tab,
  /** Starts reading from scratch (the key may have changed). */
  open(): void {
    overviewView.close();
    state.previous = undefined;
    state.samples = 0;
    state.history.clear();
    render();
    overviewState('loading', 'Reading…');
    void poll(state.generation);
  },
  close(): void {
    state.generation++;
    clearTimeout(state.timer);
  },
};
