// Scenario — many registered endpoints (outbound-endpoints): on each store, endpoints are created through the API
// in steps (e.g. 250, then up to 1,000; endpoint i subscribes to topic i and posts to its own path on one local
// receiver), idle, then events are published spread evenly over them. Checks that every endpoint got each of its
// events once (0 lost, 0 duplicates) and measures what one endpoint costs: API creation time, the gateway's
// settled RSS and V8 heap, nats-server's RSS (JetStream: one durable consumer per endpoint), and both processes'
// CPU while idle (nothing published), as least-squares slopes over the steps. Hookstream only: the bare reference
// of the `outbound` scenario has no API and no registry to measure.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { API_KEY, ROOT } from '../lib/gateway.mjs';
import { cpuMeter, scrapeMetrics, settledRss, withTarget } from '../lib/phase.mjs';
import { Worker } from '../lib/workers.mjs';
import { nowMs, sleep, slope } from '../lib/util.mjs';
import { publisherFor } from './common.mjs';

const RECEIVER = join(ROOT, 'bench', 'workers', 'receiver.mjs');
const HEAP = 'hookstream_nodejs_heap_size_used_bytes';

/** Creates endpoints `from` … `to - 1` through the API, `concurrency` at a time; ms taken. */
async function createEndpoints(t, receiverUrl, from, to, concurrency, created) {
  const t0 = nowMs();
  let next = from;
  const one = async () => {
    for (let i = next++; i < to; i = next++) {
      const secret = `whsec_${randomBytes(24).toString('base64')}`;
      const path = `/ep/${i}`;
      const res = await fetch(`${t.url}/v1/endpoints`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: `${receiverUrl}${path}`, patterns: [`events.bench.t${i}.tick`], secret }),
      });
      if (res.status !== 201) throw new Error(`creating endpoint ${i}: ${res.status} ${await res.text()}`);
      created[i] = { path, secret };
    }
  };
  await Promise.all(Array.from({ length: concurrency }, one));
  return nowMs() - t0;
}

/** The gateway's V8 heap in use after a collection pressure-free pause (median of a few scrapes). */
async function heapOf(url, samples = 3) {
  const values = [];
  for (let i = 0; i < samples; i++) {
    values.push((await scrapeMetrics(url))[HEAP] ?? null);
    await sleep(300);
  }
  const ok = values.filter((v) => v !== null).sort((a, b) => a - b);
  return ok.length ? ok[Math.floor(ok.length / 2)] : null;
}

export async function outboundEndpoints(ctx, store) {
  const P = ctx.P.outboundEndpoints;
  const out = { scenario: 'outbound-endpoints', store, params: P, steps: [], checks: [], notes: [] };
  const rx = new Worker(RECEIVER);
  try {
    const { port } = await rx.call('listen');
    const receiverUrl = `http://127.0.0.1:${port}`;
    await withTarget(
      {
        store,
        kind: 'hookstream',
        config: {
          apiKey: { endpoints: true },
          delivery: { allowPrivateNetworks: true, retrySchedule: ['1s', '2s', '5s', '5s', '5s', '5s'] },
        },
        profile: ctx.profileName('outbound-endpoints', store, 'hookstream'),
      },
      async (t) => {
        const label = `outbound-endpoints · ${store}`;
        const pids = [t.pid, t.natsPid];
        const measure = async (endpoints, createMs) => {
          // Several refreshes of the registry go by while idle: their cost is part of what an endpoint costs.
          await sleep(P.settleMs);
          const meter = cpuMeter(pids);
          await sleep(P.idleMs);
          const [gw, nats] = meter();
          // One /metrics scrape: it reads every endpoint's pending and dead counts.
          const s0 = nowMs();
          await scrapeMetrics(t.url);
          const step = {
            endpoints,
            createMs,
            scrapeMs: nowMs() - s0,
            gatewayRss: await settledRss(t.pid, P.rssSamples),
            gatewayHeap: await heapOf(t.url),
            natsRss: t.natsPid ? await settledRss(t.natsPid, P.rssSamples) : null,
            gatewayIdleCores: gw?.cores ?? null,
            natsIdleCores: nats?.cores ?? null,
          };
          out.steps.push(step);
          ctx.progress(`${label}: ${endpoints} endpoints, RSS ${(step.gatewayRss / 2 ** 20).toFixed(0)} MiB`);
        };
        await measure(0, 0);
        const created = [];
        let have = 0;
        for (const level of P.levels) {
          ctx.progress(`${label}: creating endpoints ${have}…${level - 1}`);
          const ms = await createEndpoints(t, receiverUrl, have, level, P.createConcurrency, created);
          have = level;
          await measure(level, ms);
        }

        // Deliveries: `eventsPerEndpoint` events for each endpoint, spread evenly (event n → topic n mod N).
        await rx.call('register', { endpoints: created });
        await rx.call('record');
        const pub = await publisherFor(t);
        const count = have * P.eventsPerEndpoint;
        let stats;
        const t0 = nowMs();
        try {
          await pub.call('start', { mode: pub.mode, url: t.url, rate: P.rate, count, topics: have });
          const published = await pub.call('wait');
          const until = nowMs() + P.drainTimeoutMs;
          for (;;) {
            const s = await rx.call('stats');
            ctx.progress(`${label}: received ${s.received}/${published.ok}`);
            if (s.received - s.dups >= published.ok || nowMs() > until) break;
            await sleep(500);
          }
          stats = await rx.call('stats', { upTo: count });
          out.delivery = {
            endpoints: have,
            published: published.ok,
            received: stats.received,
            lost: stats.missing,
            incompleteEndpoints: stats.incomplete,
            dups: stats.dups,
            badSignatures: stats.badSignatures,
            verified: stats.verified,
            drainS: ((stats.lastNewAt || nowMs()) - t0) / 1000,
          };
        } finally {
          await pub.stop();
        }
      },
    );
  } finally {
    await rx.stop();
  }
  const s = out.steps;
  const per = (k) => slope(s.filter((x) => x[k] !== null).map((x) => [x.endpoints, x[k]]));
  const created = s.filter((x) => x.endpoints > 0);
  out.perEndpoint = {
    gatewayRss: per('gatewayRss'),
    gatewayHeap: per('gatewayHeap'),
    natsRss: store === 'jetstream' ? per('natsRss') : null,
    gatewayIdleCores: per('gatewayIdleCores'),
    natsIdleCores: store === 'jetstream' ? per('natsIdleCores') : null,
    createMs:
      created.reduce((a, x) => a + x.createMs, 0) /
      Math.max(
        1,
        created.reduce((a, x, i) => a + x.endpoints - (i ? created[i - 1].endpoints : 0), 0),
      ),
  };
  const d = out.delivery;
  out.checks.push({
    who: 'hookstream',
    what: `${d?.endpoints} endpoints: each got every event it matches, with a valid signature (no loss)`,
    ok: !!d && d.lost === 0 && d.badSignatures === 0,
    detail: d
      ? `lost ${d.lost} (${d.incompleteEndpoints} endpoints short), bad signatures ${d.badSignatures}, verified ${d.verified}`
      : 'no delivery phase',
  });
  out.checks.push({
    who: 'hookstream',
    what: 'no webhook-id twice at a healthy receiver',
    ok: !!d && d.dups === 0,
    detail: `duplicates ${d?.dups}`,
  });
  return out;
}
