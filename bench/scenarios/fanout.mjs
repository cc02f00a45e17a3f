// Scenarios 2 and 3 — live fan-out: N clients (Socket.IO or SSE) all subscribed to events.bench.>, events
// published at fixed rates (each rate one measurement, same clients); delivered/s, publish→receipt latency,
// lost/duplicate deliveries. Hookstream vs the bare fan-out reference (one consumer, one broadcast per event,
// same wire shapes). Each target first gets `warmupEvents` at the first rate, checked but not reported.
import { deliveryCheck, measureDelivery, openCheck, publisherFor, SUBJECTS } from './common.mjs';
import { withTarget } from '../lib/phase.mjs';
import { sleep } from '../lib/util.mjs';

export async function fanout(ctx, store, transport) {
  const P = ctx.P.fanout;
  const name = transport === 'sse' ? 'fanout-sse' : 'fanout-socketio';
  const out = {
    scenario: name,
    store,
    params: { ...P, transport },
    variants: P.rates.map((v) => ({ params: v })),
    checks: [],
    notes: [],
  };
  for (const kind of ['hookstream', 'bare']) {
    const label = `${name} · ${store} · ${kind}`;
    await withTarget({ store, kind, ref: 'ref-fanout', profile: ctx.profileName(name, store, kind) }, async (t) => {
      const pub = await publisherFor(t);
      try {
        ctx.progress(`${label}: connecting ${P.clients} clients`);
        const o = await ctx.fleet.open(P.clients, { url: t.url, transport, subjects: SUBJECTS });
        out.checks.push(openCheck(kind, P.clients, o.opened, o.errors));
        await sleep(ctx.P.settleMs);
        if (P.warmupEvents) {
          // Not reported, but checked: a warm-up that loses a delivery fails the run like any other phase.
          const first = P.rates[0];
          const w = await measureDelivery(ctx, t, ctx.fleet, pub, {
            rate: first.rate,
            events: P.warmupEvents,
            drainTimeoutMs: first.drainTimeoutMs,
            label: `${label} · warm-up`,
          });
          const check = deliveryCheck(kind, w);
          check.what = `warm-up: ${check.what}`;
          out.checks.push(check);
        }
        for (const v of out.variants) {
          const r = await measureDelivery(ctx, t, ctx.fleet, pub, {
            rate: v.params.rate,
            events: v.params.events,
            drainTimeoutMs: v.params.drainTimeoutMs,
            label: `${label} · ${v.params.rate}/s`,
          });
          v[kind] = r;
          const check = deliveryCheck(kind, r);
          check.what = `${v.params.rate} events/s: ${check.what}`;
          out.checks.push(check);
        }
      } finally {
        await pub.stop();
        await ctx.fleet.closeAll();
      }
    });
  }
  for (const v of out.variants) {
    v.ratios = {
      deliveredPerS: v.hookstream.deliveredPerS / v.bare.deliveredPerS,
      p99: v.hookstream.p99 / v.bare.p99,
      cpuPerDelivery: v.hookstream.serverCpuMsPer1kDeliveries / v.bare.serverCpuMsPer1kDeliveries,
    };
    const offered = v.params.rate * P.clients;
    const short = (r) => r.deliveredPerS < 0.9 * offered;
    if (short(v.bare)) {
      out.notes.push(
        `${v.params.rate} events/s × ${P.clients} clients offers ${offered} deliveries/s, more than this machine delivers even bare: delivered/s is the saturation throughput and latency is mostly queueing (it grows with the run's length).`,
      );
    } else if (short(v.hookstream)) {
      out.notes.push(
        `${v.params.rate} events/s × ${P.clients} clients offers ${offered} deliveries/s: the bare reference keeps up, Hookstream does not, so its latency is mostly queueing (it grows with the run's length).`,
      );
    }
  }
  return out;
}
