// Scenario 7 — scale curve: clients are added in steps (e.g. 100, 1,000, 5,000, 10,000), all subscribed to
// the bench pattern. Memory pass: the server's settled RSS at each step with the clients idle (nothing
// published yet, so no delivery buffers or heap growth from earlier bursts count). Delivery pass: the same
// steps again, a short paced burst at each (delivered/s, latency, correctness). Socket.IO and SSE, Hookstream
// and the bare reference. Memory per idle connection is the least-squares slope of RSS over clients.
import { withTarget, settledRss } from '../lib/phase.mjs';
import { sleep } from '../lib/util.mjs';
import { measureDelivery, publisherFor, SUBJECTS } from './common.mjs';

function slope(points) {
  const n = points.length;
  if (n < 2) return null;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? num / den : null;
}

export async function scale(ctx, store) {
  const P = ctx.P.scale;
  const out = { scenario: 'scale', store, params: P, levels: {}, memPerConn: {}, baseline: {}, checks: [], notes: [] };
  for (const transport of ['socketio', 'sse']) {
    out.levels[transport] = {};
    out.baseline[transport] = {};
    for (const kind of ['hookstream', 'bare']) {
      const label = `scale · ${store} · ${transport} · ${kind}`;
      out.levels[transport][kind] = await withTarget(
        { store, kind, ref: 'ref-fanout', profile: ctx.profileName(`scale-${transport}`, store, kind) },
        async (t) => {
          const pub = await publisherFor(t);
          const levels = [];
          try {
            await sleep(ctx.P.settleMs);
            out.baseline[transport][kind] = await settledRss(t.pid, P.rssSamples);
            // Pass 1, memory: clients added step by step, nothing published yet, RSS settled at each step.
            let connected = 0;
            for (const level of P.levels) {
              ctx.progress(`${label}: memory pass, connecting ${level} clients`);
              const want = level - connected;
              const o = await ctx.fleet.open(want, { url: t.url, transport, subjects: SUBJECTS, concurrency: 50 });
              connected = level;
              if (o.opened !== want) {
                out.checks.push({
                  who: kind,
                  what: `${transport}: every client connected`,
                  ok: false,
                  warnOnly: true,
                  detail: `${o.opened} of ${want} at the ${level} step; ${o.errors.slice(0, 2).join('; ')}`,
                });
              }
              await sleep(2 * ctx.P.settleMs);
              levels.push({ clients: level, offered: P.rate * level, rssIdle: await settledRss(t.pid, P.rssSamples) });
            }
            await ctx.fleet.closeAll();
            await sleep(ctx.P.settleMs);
            // Pass 2, delivery: the same steps, a short paced burst at each.
            connected = 0;
            for (const l of levels) {
              ctx.progress(`${label}: delivery pass, connecting ${l.clients} clients`);
              await ctx.fleet.open(l.clients - connected, {
                url: t.url,
                transport,
                subjects: SUBJECTS,
                concurrency: 50,
              });
              connected = l.clients;
              await sleep(ctx.P.settleMs);
              const r = await measureDelivery(ctx, t, ctx.fleet, pub, {
                rate: P.rate,
                events: P.events,
                drainTimeoutMs: P.drainTimeoutMs,
                label: `${label} · ${l.clients} clients`,
              });
              Object.assign(l, {
                deliveredPerS: r.deliveredPerS,
                p50: r.p50,
                p99: r.p99,
                lost: r.lost,
                dups: r.dups,
                gaps: r.gaps,
                serverCores: r.serverCores,
                serverCpuMsPer1kDeliveries: r.serverCpuMsPer1kDeliveries,
                rssAfterBurst: await settledRss(t.pid, Math.min(3, P.rssSamples), 200),
              });
              if (r.lost || r.dups || r.gaps || r.incomplete) {
                out.checks.push({
                  who: kind,
                  what: `${transport} at ${l.clients} clients: every client received every event once, in order`,
                  ok: false,
                  detail: `lost ${r.lost}, duplicates ${r.dups}, gaps ${r.gaps}, incomplete ${r.incomplete}`,
                });
              }
            }
          } finally {
            await pub.stop();
            await ctx.fleet.closeAll();
          }
          return levels;
        },
      );
    }
    const per = (kind) => slope(out.levels[transport][kind].map((l) => [l.clients, l.rssIdle]));
    const hs = per('hookstream');
    const bare = per('bare');
    out.memPerConn[transport] = { hookstream: hs, bare, ratio: hs / bare };
    out.checks.push({
      who: 'hookstream',
      what: `${transport}: every client received every event once, in order, at every step`,
      ok: !out.checks.some((c) => c.who === 'hookstream' && !c.ok && !c.warnOnly && c.what.startsWith(transport)),
      detail: out.levels[transport].hookstream
        .map((l) => `${l.clients}: lost ${l.lost}, dup ${l.dups}, gaps ${l.gaps}`)
        .join('; '),
    });
  }
  return out;
}
