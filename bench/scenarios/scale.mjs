// Scenario 7 — scale. Two parts, each on Hookstream and on the bare reference (bench/refs/ref-fanout.mjs):
// - memory per idle connection, per transport: clients added in steps (e.g. 1,000, 5,000, 10,000), nothing
//   published, the server's settled RSS at each step; the figure is the least-squares slope of RSS over clients.
// - the scale curve: half Socket.IO, half SSE clients added in steps up to 50,000. Every client watches one of
//   T topics (`events.bench.t<k>.>`) and the broadcast subject. At each step, with the clients idle: RSS; then a
//   broadcast (a few events every client gets) and a topic load (T events/s spread over the topics, so each
//   client gets ~1 event/s), each measured for delivered/s, publish→receipt p50/p99 and server CPU, and checked
//   per client (no loss, duplicate or gap). Its own client fleet: enough processes for the largest step, each
//   from its own loopback address (fleet.mjs), and the open-file limit raised where the machine allows it.
import { withTarget, settledRss } from '../lib/phase.mjs';
import { Fleet } from '../lib/fleet.mjs';
import { fdLimits, raiseFdLimit } from '../lib/fd-limit.mjs';
import { nowMs, sleep, slope } from '../lib/util.mjs';
import { measureDelivery, publisherFor, SUBJECTS } from './common.mjs';

/** Descriptors a step needs beyond its connections (the gateway's own files, NATS, the listening socket…). */
const FD_HEADROOM = 1_000;

export async function scale(ctx, store) {
  const P = ctx.P.scale;
  const out = {
    scenario: 'scale',
    store,
    params: P,
    levels: {},
    memPerConn: {},
    baseline: {},
    curve: {},
    curveBaseline: {},
    checks: [],
    notes: [],
  };
  const fail = (who, what, detail, warnOnly = false) => out.checks.push({ who, what, ok: false, warnOnly, detail });

  // ---- memory per idle connection, per transport -------------------------------------------------------------
  for (const transport of ['socketio', 'sse']) {
    out.levels[transport] = {};
    out.baseline[transport] = {};
    for (const kind of ['hookstream', 'bare']) {
      const label = `scale · ${store} · ${transport} · ${kind}`;
      out.levels[transport][kind] = await withTarget(
        { store, kind, ref: 'ref-fanout', profile: ctx.profileName(`scale-${transport}`, store, kind) },
        async (t) => {
          const levels = [];
          try {
            await sleep(ctx.P.settleMs);
            out.baseline[transport][kind] = await settledRss(t.pid, P.memory.rssSamples);
            let connected = 0;
            for (const level of P.memory.levels) {
              ctx.progress(`${label}: memory, connecting ${level} clients`);
              const want = level - connected;
              const o = await ctx.fleet.open(want, { url: t.url, transport, subjects: SUBJECTS, concurrency: 50 });
              connected = level;
              if (o.opened !== want) {
                fail(
                  kind,
                  `${transport}: every client connected`,
                  `${o.opened} of ${want} at ${level}; ${o.errors.slice(0, 2).join('; ')}`,
                  true,
                );
              }
              await sleep(2 * ctx.P.settleMs);
              levels.push({ clients: level, rssIdle: await settledRss(t.pid, P.memory.rssSamples) });
            }
          } finally {
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
  }

  // ---- the scale curve: half Socket.IO, half SSE, up to the largest step -----------------------------------
  const C = P.curve;
  const raised = raiseFdLimit(C.fdLimit);
  const limit = fdLimits()?.soft ?? Infinity;
  if (raised.error) out.notes.push(`open-file limit not raised (${raised.error}): ${limit} per process`);
  // One process holds at most `perServer` connections (its fd limit). On JetStream, a larger step is spread over
  // that many replicas on the one stream (for Hookstream and the bare servers alike, at every step); the
  // embedded store is one process, so larger steps are left out.
  const perServer = limit - FD_HEADROOM;
  const shards = store === 'jetstream' ? Math.max(1, Math.ceil(Math.max(...C.steps) / perServer)) : 1;
  const steps = C.steps.filter((s) => s <= perServer * shards);
  if (shards > 1) {
    out.notes.push(
      `scale curve on ${shards} server processes of each kind (replicas on the one stream, clients spread evenly): ${limit} open files per process hold at most ${perServer} connections`,
    );
  }
  if (steps.length < C.steps.length) {
    out.notes.push(
      `steps ${C.steps.filter((s) => !steps.includes(s)).join(', ')} left out: ${limit} open files per process is too few for one ${store} server`,
    );
  }
  out.fdLimit = limit;
  out.shards = shards;
  const perProcess = Math.min(C.perProcess, perServer);
  const fleet = new Fleet(Math.max(1, Math.ceil(Math.max(0, ...steps) / perProcess)), { perProcess });
  try {
    for (const kind of ['hookstream', 'bare']) {
      const label = `scale curve · ${store} · ${kind}`;
      out.curve[kind] = await withTarget(
        { store, kind, ref: 'ref-fanout', shards, profile: ctx.profileName('scale-curve', store, kind) },
        async (t) => {
          const pub = await publisherFor(t);
          const rows = [];
          let fromSeq = 0;
          const measure = async (what, opts) => {
            const r = await measureDelivery(ctx, t, fleet, pub, { ...opts, fromSeq, label: `${label} · ${what}` });
            fromSeq = Math.max(fromSeq, r.lastSeq);
            if (r.lost || r.dups || r.gaps || r.incomplete || r.unexpected) {
              fail(
                kind,
                `scale curve, ${what}: every client received every event once, in order`,
                `lost ${r.lost}, duplicates ${r.dups}, gaps ${r.gaps}, incomplete ${r.incomplete}, unexpected ${r.unexpected}`,
              );
            }
            return r;
          };
          const pick = (r) => ({
            deliveredPerS: r.deliveredPerS,
            deliveries: r.deliveries,
            expected: r.expectedDeliveries,
            p50: r.p50,
            p99: r.p99,
            serverCores: r.serverCores,
            serverCpuMsPer1kDeliveries: r.serverCpuMsPer1kDeliveries,
            lost: r.lost,
            dups: r.dups,
            gaps: r.gaps,
          });
          try {
            await sleep(ctx.P.settleMs);
            out.curveBaseline[kind] = await settledRss(t.pids, C.rssSamples);
            let connected = 0;
            for (const step of steps) {
              ctx.progress(`${label}: connecting ${step} clients`);
              const t0 = nowMs();
              const o = await fleet.open(step - connected, {
                urls: t.urls,
                transport: 'mixed',
                topics: C.topics,
                broadcastToo: true,
                concurrency: 50,
                timeoutMs: 120_000,
              });
              const connectS = (nowMs() - t0) / 1000;
              if (o.opened !== step - connected) {
                fail(
                  kind,
                  `scale curve: every client connected`,
                  `${o.opened} of ${step - connected} at the ${step} step; ${o.errors.slice(0, 2).join('; ')}`,
                  true,
                );
              }
              connected = step;
              await sleep(2 * ctx.P.settleMs);
              const rssIdle = await settledRss(t.pids, C.rssSamples);
              if (rows.length === 0) {
                // A fresh process runs its first deliveries cold (JIT): warm up, checked but not counted.
                await measure('warm-up', { ...C.broadcast, topics: 0, broadcast: true });
              }
              const broadcast = await measure(`${step} clients, broadcast`, {
                ...C.broadcast,
                topics: 0,
                broadcast: true,
              });
              const load = await measure(`${step} clients, ${C.topics} topics`, {
                rate: C.topicRate,
                events: Math.round(C.topicRate * C.topicSeconds),
                drainTimeoutMs: C.drainTimeoutMs,
                topics: C.topics,
              });
              rows.push({
                clients: step,
                connectS,
                rssIdle,
                rssPerConn: (rssIdle - out.curveBaseline[kind]) / step,
                broadcast: pick(broadcast),
                topics: pick(load),
              });
            }
          } finally {
            await pub.stop();
            await fleet.closeAll();
          }
          return rows;
        },
      );
    }
  } finally {
    await fleet.stop();
  }
  out.checks.push({
    who: 'hookstream',
    what: 'scale curve: every client received every event once, in order, at every step',
    ok: !out.checks.some((c) => c.who === 'hookstream' && !c.ok && !c.warnOnly),
    detail: (out.curve.hookstream ?? [])
      .map(
        (l) =>
          `${l.clients}: lost ${l.topics.lost + l.broadcast.lost}, dup ${l.topics.dups + l.broadcast.dups}, gaps ${l.topics.gaps + l.broadcast.gaps}`,
      )
      .join('; '),
  });
  return out;
}
