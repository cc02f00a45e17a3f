// Pieces the client-based scenarios share: a publisher worker for a target, one paced publish-and-drain
// measurement, and the correctness check of a client fleet.
import { join } from 'node:path';
import { API_KEY, ROOT } from '../lib/gateway.mjs';
import { cpuMeter, scrapeMetrics } from '../lib/phase.mjs';
import { Worker } from '../lib/workers.mjs';
import { nowMs, sleep } from '../lib/util.mjs';

const PUBLISHER = join(ROOT, 'bench', 'workers', 'publisher.mjs');
export const SUBJECTS = ['events.bench.>'];

/**
 * A publisher for the target: JetStream → js.publish straight into the stream (both Hookstream and the
 * bare reference tap the same stream); embedded → POST /v1/events to the target (its only way in).
 */
export async function publisherFor(t) {
  const w = new Worker(PUBLISHER, [], { env: { BENCH_API_KEY: API_KEY } });
  if (t.store === 'jetstream') await w.call('connect', { natsUrl: t.natsUrl });
  w.mode = t.store === 'jetstream' ? 'nats' : 'v1';
  return w;
}

/**
 * Publishes `events` at `rate`/s (mode: publisher's own, or 'webhook'; `topics` as the clients were opened
 * with), waits until every client has every event it should get (or `drainTimeoutMs`), and measures
 * deliveries/s, latency and CPU. Clients must be open already. `broadcast`: topic clients that also watch the
 * broadcast subject get every event published (topics 0); `fromSeq`: only later seqs are checked (one phase of
 * several on the same clients).
 */
export async function measureDelivery(
  ctx,
  t,
  fleet,
  pub,
  { rate, events, drainTimeoutMs, mode, label, topics = 0, broadcast = false, fromSeq = 0 },
) {
  const before = await fleet.stats();
  await fleet.record();
  const meter = cpuMeter([t.pids ?? t.pid, t.natsPid, ...fleet.pids]);
  // A target of several processes: the share of each part, too (e.g. Pushpin and its origin).
  const partNames = Object.keys(t.cpuParts ?? {});
  const partsMeter = cpuMeter(partNames.map((k) => t.cpuParts[k]));
  const mode_ = mode ?? pub.mode;
  const url = t.publishUrl ?? t.url;
  const { started } = await pub.call('start', { mode: mode_, url, rate, count: events, topics });
  for (;;) {
    const st = await pub.call('status');
    const s = await fleet.stats();
    ctx.progress(`${label}: published ${st.sent}/${events}, delivered ${s.received - before.received}`);
    if (!st.running) break;
    await sleep(250);
  }
  const published = await pub.call('wait');
  const pubEnd = nowMs();
  const lastSeq = published.maxSeq;
  const targets = { lastSeq, lastByTopic: published.lastByTopic, broadcast };
  const drained = await fleet.drained(targets, drainTimeoutMs, (s) =>
    ctx.progress(`${label}: draining, ${s.behind} clients behind, delivered ${s.received - before.received}`),
  );
  const [server, nats, ...gens] = meter();
  const parts = partsMeter();
  const after = await fleet.stats(true);
  await fleet.each('stop');
  const verify = await fleet.verify({
    lastSeq,
    seqsByTopic: published.seqsByTopic,
    broadcastSeqs: broadcast ? published.seqs : undefined,
    fromSeq,
  });
  const metrics = t.kind === 'hookstream' ? await scrapeMetrics(t.url) : {};
  const deliveries = after.received - before.received;
  // Not shorter than the publishing schedule itself: clients that keep up deliver at the offered rate.
  const span = Math.max(after.lastAt - started, (events / rate) * 1000) / 1000;
  return {
    offeredEventsPerS: rate,
    publishedOk: published.ok,
    publishFailed: published.failed,
    publishStatuses: published.statuses,
    publishSeconds: (pubEnd - started) / 1000,
    lastSeq,
    clients: after.clients,
    connected: after.connected,
    deliveries,
    expectedDeliveries: topics ? Math.round((published.ok * after.clients) / topics) : published.ok * after.clients,
    topics,
    deliveredPerS: span > 0 ? deliveries / span : 0,
    drainSeconds: (after.lastAt - pubEnd) / 1000,
    drainedInTime: drained.behind === 0,
    p50: after.hist.quantile(0.5),
    p99: after.hist.quantile(0.99),
    max: after.hist.quantile(1),
    lost: verify.missing,
    dups: verify.dups,
    gaps: verify.gaps,
    incomplete: verify.incomplete,
    unexpected: verify.unexpected,
    drops: after.drops,
    gapNotices: after.gapNotices,
    serverCores: server?.cores,
    natsCores: nats?.cores,
    generatorCores: gens.reduce((a, g) => a + (g?.cores ?? 0), 0),
    serverCpuMsPer1kDeliveries: deliveries ? ((server?.cpuS ?? 0) * 1e6) / deliveries : null,
    serverCpuPartsMsPer1k: partNames.length
      ? Object.fromEntries(partNames.map((k, i) => [k, deliveries ? ((parts[i]?.cpuS ?? 0) * 1e6) / deliveries : null]))
      : undefined,
    slowConsumerFallbacks: metrics.hookstream_slow_consumer_fallbacks_total,
    replayed: metrics.hookstream_replayed_events_total,
    postLatency: published.post,
  };
}

/** The correctness check for one measured fleet. */
export function deliveryCheck(who, r) {
  return {
    who,
    what: 'every client received every event once, in order (no loss, no duplicate, no gap)',
    ok: r.lost === 0 && r.dups === 0 && r.gaps === 0 && r.incomplete === 0 && !r.unexpected,
    detail: `${r.deliveries} deliveries${r.topics ? ` (≈${r.expectedDeliveries} expected)` : ` of ${r.expectedDeliveries} expected`}; lost ${r.lost}, duplicates ${r.dups}, gaps ${r.gaps}, clients incomplete ${r.incomplete}${r.unexpected ? `, unexpected ${r.unexpected}` : ''}, server-closed reconnects ${r.drops}`,
    // The same figures as numbers, for a report that states them (e.g. a peer's loss) rather than judging them.
    counts: {
      deliveries: r.deliveries,
      expected: r.expectedDeliveries,
      lost: r.lost,
      dups: r.dups,
      gaps: r.gaps,
      incomplete: r.incomplete,
    },
  };
}

export function openCheck(who, wanted, opened, errors) {
  return {
    who,
    what: 'every client connected and subscribed',
    ok: opened === wanted,
    warnOnly: true,
    detail: `${opened}/${wanted}${errors?.length ? `; e.g. ${errors.slice(0, 2).join('; ')}` : ''}`,
  };
}
