// Scenario — outbound webhooks: events stored at a fixed rate, spread evenly over 1, 10 and 100 endpoints
// (endpoint i subscribes to topic i), POSTed to a fast local receiver in its own process. Deliveries/s,
// stored→received latency (the publisher stamps each event when it stores it), lost and duplicate webhook-ids.
// Then the receiver goes down while events keep coming, and comes back: how long until every endpoint has
// every event, and whether any was lost or sent twice. Reference: one JetStream durable pull consumer per
// endpoint, signed POSTs over keep-alive, ack on 2xx (bench/refs/ref-outbound.mjs). JetStream only.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { API_KEY, ROOT } from '../lib/gateway.mjs';
import { cpuMeter, withTarget } from '../lib/phase.mjs';
import { Worker } from '../lib/workers.mjs';
import { Histogram, nowMs, sleep } from '../lib/util.mjs';
import { publisherFor } from './common.mjs';

const RECEIVER = join(ROOT, 'bench', 'workers', 'receiver.mjs');
// Short retries for both sides, long enough in all to outlast the receiver's outage (the default schedule's
// first retry after 5 s and the next after 5 min would measure the schedule, not the sender).
const RETRY_MS = [1_000, 2_000, ...Array(20).fill(5_000)];

const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

async function createEndpoints(t, receiverUrl, count) {
  const endpoints = [];
  for (let i = 0; i < count; i++) {
    const path = `/ep/${i}`;
    const secret = newSecret();
    const patterns = [`events.bench.t${i}.tick`];
    const body = JSON.stringify(
      t.kind === 'hookstream'
        ? { url: `${receiverUrl}${path}`, patterns, secret }
        : { id: String(i), url: `${receiverUrl}${path}`, patterns, secret },
    );
    const res = await fetch(`${t.url}${t.kind === 'hookstream' ? '/v1/endpoints' : '/endpoints'}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body,
    });
    if (res.status !== 201) throw new Error(`creating endpoint ${i}: ${res.status} ${await res.text()}`);
    endpoints.push({ path, secret });
  }
  return endpoints;
}

/** Waits until the receiver got `expected` deliveries in this window (or timeout); then the exact counts. */
async function drain(ctx, rx, expected, upTo, timeoutMs, label) {
  const until = nowMs() + timeoutMs;
  for (;;) {
    const s = await rx.call('stats');
    ctx.progress(`${label}: received ${s.received}/${expected}`);
    if (s.received - s.dups >= expected || nowMs() > until) break;
    await sleep(250);
  }
  return rx.call('stats', { upTo });
}

/** One target: the steady-rate levels, then the outage. */
async function runTarget(ctx, kind, rx, receiverUrl) {
  const P = ctx.P.outbound;
  const levels = [];
  for (const endpoints of P.endpoints) {
    const level = await withTarget(
      {
        store: 'jetstream',
        kind,
        ref: 'ref-outbound',
        config: {
          apiKey: { endpoints: true },
          delivery: { allowPrivateNetworks: true, retrySchedule: RETRY_MS.map((v) => `${v}ms`) },
        },
        profile: ctx.profileName('outbound', 'jetstream', kind),
      },
      async (t) => {
        const label = `outbound · ${kind} · ${endpoints} endpoints`;
        const eps = await createEndpoints(t, receiverUrl, endpoints);
        await rx.call('register', { endpoints: eps });
        const pub = await publisherFor(t);
        try {
          // Steady rate.
          await rx.call('record');
          const meter = cpuMeter([t.pids ?? t.pid, t.natsPid]);
          const { started } = await pub.call('start', {
            mode: 'nats',
            rate: P.rate,
            count: P.events,
            topics: endpoints,
          });
          const published = await pub.call('wait');
          const steady = await drain(ctx, rx, published.ok, P.events, P.drainTimeoutMs, label);
          const [server, nats] = meter();
          const hist = new Histogram(steady.hist);
          const span = Math.max(steady.lastNewAt - started, (P.events / P.rate) * 1000) / 1000;
          const out = {
            endpoints,
            published: published.ok,
            deliveries: steady.received,
            deliveredPerS: steady.received / span,
            p50: hist.quantile(0.5),
            p99: hist.quantile(0.99),
            lost: steady.missing,
            dups: steady.dups,
            verified: steady.verified,
            badSignatures: steady.badSignatures,
            serverCores: server?.cores,
            natsCores: nats?.cores,
          };
          // The outage: on the level named for it only.
          if (endpoints === P.down.endpoints) {
            await rx.call('record');
            await rx.call('down');
            const downAt = nowMs();
            const startN = P.events;
            const count = Math.round((P.rate * P.down.ms) / 1000);
            await pub.call('start', { mode: 'nats', rate: P.rate, count, topics: endpoints, startN });
            const pubDown = await pub.call('wait');
            const upAt = nowMs();
            await rx.call('up');
            const after = await drain(
              ctx,
              rx,
              pubDown.ok,
              startN + count,
              P.down.drainTimeoutMs,
              `${label} · after outage`,
            );
            out.down = {
              downS: (upAt - downAt) / 1000,
              published: pubDown.ok,
              drainS: after.lastNewAt ? (after.lastNewAt - upAt) / 1000 : null,
              lost: after.missing,
              dups: after.dups,
              badSignatures: after.badSignatures,
            };
          }
          return out;
        } finally {
          await pub.stop();
        }
      },
    );
    levels.push(level);
  }
  return levels;
}

export async function outbound(ctx, store) {
  const P = ctx.P.outbound;
  const out = { scenario: 'outbound', store, params: P, checks: [], notes: [] };
  const rx = new Worker(RECEIVER);
  try {
    const { port } = await rx.call('listen');
    const receiverUrl = `http://127.0.0.1:${port}`;
    out.hookstream = await runTarget(ctx, 'hookstream', rx, receiverUrl);
    out.bare = await runTarget(ctx, 'bare', rx, receiverUrl);
  } finally {
    await rx.stop();
  }
  out.ratios = out.hookstream.map((h, i) => h.deliveredPerS / out.bare[i]?.deliveredPerS);
  for (const [who, levels] of [
    ['hookstream', out.hookstream],
    ['bare', out.bare],
  ]) {
    const lost = levels.reduce((a, l) => a + l.lost + (l.down?.lost ?? 0), 0);
    const dups = levels.reduce((a, l) => a + l.dups + (l.down?.dups ?? 0), 0);
    const bad = levels.reduce((a, l) => a + l.badSignatures + (l.down?.badSignatures ?? 0), 0);
    out.checks.push({
      who,
      what: 'every endpoint received every event it matches, with a valid signature (no loss)',
      ok: lost === 0 && bad === 0,
      detail: `lost ${lost}, bad signatures ${bad}, signatures verified ${levels.reduce((a, l) => a + l.verified, 0)}`,
    });
    out.checks.push({
      who,
      what: 'no webhook-id twice at a healthy receiver',
      ok: dups === 0,
      warnOnly: true, // at-least-once: a duplicate is allowed, but worth seeing
      detail: `duplicates ${dups}`,
    });
  }
  return out;
}
