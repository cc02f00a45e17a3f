// Scenarios 2 and 3 — live fan-out: N clients (Socket.IO or SSE) all subscribed to events.bench.>, events
// published at fixed rates (each rate one measurement, same clients); delivered/s, publish→receipt latency,
// lost/duplicate deliveries. Hookstream vs the bare fan-out reference (one consumer, one broadcast per event,
// same wire shapes). Each target first gets `warmupEvents` at the first rate, checked but not reported.
// SSE also runs Pushpin when it is installed (a GRIP origin on the same feed publishing each event once).
// Every target: RSS growth per idle connection, and (with `saturation`) the highest rate it serves with p99
// under a bound, found by stepping the rate up on the same clients.
import { deliveryCheck, measureDelivery, openCheck, publisherFor, SUBJECTS } from './common.mjs';
import { findSaturation } from './saturation.mjs';
import { settledRss, withTarget } from '../lib/phase.mjs';
import { pushpinVersion } from '../lib/pushpin.mjs';
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
    memory: {},
    saturation: {},
  };
  const kinds = ['hookstream', 'bare'];
  // `--param fanout.pushpin=false` leaves the peer out (a shorter run of Hookstream against the bare reference).
  if (transport === 'sse' && P.pushpin === false)
    out.notes.push('Pushpin left out of this run (fanout.pushpin=false).');
  else if (transport === 'sse') {
    out.pushpin = pushpinVersion() ?? 'not installed';
    if (out.pushpin === 'not installed')
      out.notes.push('Pushpin is not installed (no `pushpin` on PATH): not measured.');
    else kinds.push('pushpin');
  }
  for (const kind of kinds) {
    const label = `${name} · ${store} · ${kind}`;
    const opts = { store, kind, ref: 'ref-fanout', profile: ctx.profileName(name, store, kind), pushpin: P.pushpin };
    // Pushpin's checks are facts about the peer (measured by the same client), not checks of Hookstream: the
    // report states them (e.g. "Pushpin lost N of M deliveries") instead of counting them as failures.
    const addChecks = (...checks) =>
      out.checks.push(...checks.map((c) => (kind === 'pushpin' ? { ...c, peer: true } : c)));
    const phase = withTarget(opts, async (t) => {
      const pub = await publisherFor(t);
      try {
        if (t.server.services) out.pushpinProcesses = t.server.services.map((s) => s.name);
        if (t.server.restarted)
          out.notes.push(
            `Pushpin did not become ready on its first start (${t.server.restarted}); all of it was stopped and it was started again on fresh ports, which worked. Its figures are from that second start.`,
          );
        await sleep(ctx.P.settleMs);
        const rssBefore = await settledRss(t.pids, 3);
        ctx.progress(`${label}: connecting ${P.clients} clients`);
        const o = await ctx.fleet.open(P.clients, { url: t.url, transport, subjects: SUBJECTS });
        addChecks(openCheck(kind, P.clients, o.opened, o.errors));
        await sleep(ctx.P.settleMs);
        const rssIdle = await settledRss(t.pids, 3);
        out.memory[kind] = {
          clients: o.opened,
          openRetries: o.retried,
          rssBefore,
          rssIdle,
          bytesPerConnection: o.opened ? (rssIdle - rssBefore) / o.opened : null,
        };
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
          check.at = 'warm-up';
          check.what = `warm-up: ${check.what}`;
          addChecks(check);
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
          check.at = `${v.params.rate} events/s`;
          check.what = `${check.at}: ${check.what}`;
          addChecks(check);
        }
        if (P.saturation) {
          const since = out.variants.at(-1)?.[kind];
          out.saturation[kind] = await findSaturation(ctx, t, pub, { ...P.saturation, label, since });
          addChecks(...out.saturation[kind].checks.map((c) => ({ ...c, who: kind })));
        }
      } finally {
        // Pushpin logs warnings only (e.g. a stream it gave up on): kept as evidence for its figures.
        if (t.server.output && kind === 'pushpin') out.pushpinLog = t.server.output().slice(-4_000);
        await pub.stop();
        await ctx.fleet.closeAll();
      }
    });
    if (kind !== 'pushpin') {
      await phase;
      continue;
    }
    // The peer is context, not the thing under test: a broken install is reported, not fatal.
    await phase.catch((err) => {
      out.pushpin = `error: ${String(err?.message ?? err).split('\n')[0]}`;
      out.checks.push({
        who: 'pushpin',
        what: 'Pushpin ran',
        ok: false,
        warnOnly: true,
        peer: true,
        detail: String(err?.stack ?? err),
      });
      return ctx.fleet.closeAll();
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
