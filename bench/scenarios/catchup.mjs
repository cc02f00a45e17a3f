// Scenario 5 — catch-up: a client takes a cursor, N events are stored, then it resumes from that cursor while
// live events keep flowing; events/s until it has caught up with the backlog, and time until it is live
// (it received an event published after its resubscribe was acked). Once over Socket.IO, once over SSE.
// Reference: reading the same range with a bare ordered consumer (JetStream) or paged SQLite reads (embedded).
// Client ceiling: the same client taking the same frames from a server that only writes them from memory
// (bench/workers/frame-writer.mjs), no live load: how much of the gap to the bare read is the client process
// and the shared cores, not the gateway.
import { join } from 'node:path';
import { Fleet } from '../lib/fleet.mjs';
import { ROOT } from '../lib/gateway.mjs';
import { cpuMeter, withTarget } from '../lib/phase.mjs';
import { Worker } from '../lib/workers.mjs';
import { cursorSeq, nowMs, waitFor } from '../lib/util.mjs';
import { publisherFor, SUBJECTS } from './common.mjs';

const BARE_READ = join(ROOT, 'bench', 'workers', 'bare-read.mjs');
const FRAME_WRITER = join(ROOT, 'bench', 'workers', 'frame-writer.mjs');

export async function catchup(ctx, store) {
  const P = ctx.P.catchup;
  const out = { scenario: 'catchup', store, params: P, hookstream: {}, checks: [], notes: [] };
  await withTarget(
    { store, kind: 'hookstream', profile: ctx.profileName('catchup', store, 'hookstream'), config: P.config },
    async (t) => {
      const pub = await publisherFor(t);
      const label = `catchup · ${store}`;
      try {
        // The cursor a client holds before the backlog is written.
        const probe = await ctx.fleet.open(1, { url: t.url, transport: 'socketio', subjects: SUBJECTS });
        const cursor = probe.cursors[0];
        await ctx.fleet.closeAll();
        if (!cursor) throw new Error(`the probe client got no cursor: ${probe.errors.join('; ')}`);

        ctx.progress(`${label}: storing ${P.events} events`);
        const pre = await pub.call('preload', { mode: pub.mode, url: t.url, count: P.events }, 600_000);
        out.preload = {
          stored: pre.ok,
          failed: pre.failed,
          perS: pre.ok / (pre.elapsedMs / 1000),
          lastSeq: pre.maxSeq,
        };
        if (pre.ok !== P.events) out.notes.push(`preload stored ${pre.ok} of ${P.events} events`);

        await pub.call('start', { mode: pub.mode, url: t.url, rate: P.liveRate, durationMs: P.timeoutMs });
        for (const transport of ['socketio', 'sse']) {
          const opened = nowMs();
          const meter = cpuMeter([t.pid, t.natsPid, ...ctx.fleet.pids]);
          const o = await ctx.fleet.open(1, {
            url: t.url,
            transport,
            subjects: SUBJECTS,
            cursor,
            targetSeq: pre.maxSeq,
            awaitLive: true,
            timeoutMs: P.timeoutMs,
          });
          if (!o.opened) throw new Error(`${transport} resume failed: ${o.errors.join('; ')}`);
          const want = transport === 'socketio' ? 1 : 2;
          const done = await waitFor(
            async () => {
              const s = await ctx.fleet.stats();
              ctx.progress(`${label}: ${transport} client resumed, ${s.received} delivered so far`);
              return s.reached >= want && s.live >= want;
            },
            { timeoutMs: P.timeoutMs, everyMs: 50 },
          );
          const [server, nats, ...gens] = meter();
          const s = await ctx.fleet.stats(true);
          const c = s.timings[s.timings.length - 1];
          const clientCpu = gens.reduce((a, g) => a + (g?.cpuS ?? 0), 0);
          out.hookstream[transport] = {
            backlog: pre.maxSeq - c.startSeq,
            rate: c.reachedAt ? (pre.maxSeq - c.startSeq) / ((c.reachedAt - opened) / 1000) : 0,
            toCaughtUpMs: c.reachedAt ? c.reachedAt - opened : null,
            toLiveMs: c.liveAt ? c.liveAt - opened : null,
            done,
            // Whose CPU ran out: the gateway's, or the one client's process (one core at most).
            serverCores: server?.cores,
            natsCores: nats?.cores,
            clientCores: Math.max(...gens.map((g) => g?.cores ?? 0)),
            // CPU per event delivered (backlog and the live events of the same time): steadier than events/s on a
            // shared box.
            serverUsPerEvent: server ? (server.cpuS * 1e6) / c.received : null,
            clientUsPerEvent: (clientCpu * 1e6) / c.received,
          };
        }
        await pub.call('stopPublishing');
        const live = await pub.call('wait');
        const lastSeq = Math.max(live.maxSeq, pre.maxSeq);
        await ctx.fleet.drained({ lastSeq }, 60_000);
        const s = await ctx.fleet.stats(true);
        for (const c of s.timings) {
          const r = out.hookstream[c.transport];
          Object.assign(r, { lost: c.missing + Math.max(0, lastSeq - c.last), dups: c.dups, gaps: c.gaps });
          out.checks.push({
            who: 'hookstream',
            what: `${c.transport}: the resumed client received every event after its cursor once, in order`,
            ok: r.lost === 0 && r.dups === 0 && r.gaps === 0 && r.done,
            detail: `${c.received} received through seq ${c.last} of ${lastSeq}; lost ${r.lost}, duplicates ${r.dups}, gaps ${r.gaps}${r.done ? '' : '; did not catch up in time'}`,
          });
        }
        await ctx.fleet.closeAll();
        await pub.stop();

        // The reference: the same range, read bare (the gateway stopped first for the embedded log: one owner).
        ctx.progress(`${label}: bare read of the same ${pre.maxSeq} events`);
        if (store === 'embedded') await t.server.stop({ keepData: true });
        const reader = new Worker(BARE_READ);
        try {
          out.bare = await reader.call('read', {
            store,
            natsUrl: t.natsUrl,
            dataDir: t.server.dataDir,
            fromSeq: 1,
            count: pre.maxSeq,
          });
        } finally {
          await reader.stop();
        }
        out.checks.push({
          who: 'bare',
          what: 'the bare read saw every seq once, in order',
          ok: out.bare.gaps === 0 && out.bare.count === pre.maxSeq,
          detail: `${out.bare.count} read, ${out.bare.gaps} gaps`,
        });
        out.ceiling = await clientCeiling(ctx, t, store, { cursor, toSeq: pre.maxSeq, timeoutMs: P.timeoutMs });
        for (const tr of ['socketio', 'sse']) {
          const x = out.ceiling[tr];
          out.checks.push({
            who: 'ceiling',
            what: `${tr}: the client took every pre-built frame once, in order`,
            ok: x.ok && x.done,
            detail: `${x.received} of ${out.ceiling.events} received`,
          });
        }
      } finally {
        await pub.stop();
      }
    },
  );
  out.ratios = {
    socketio: out.hookstream.socketio?.rate / out.bare?.rate,
    sse: out.hookstream.sse?.rate / out.bare?.rate,
  };
  out.ceilingRatios = {
    socketio: out.ceiling?.socketio?.rate / out.bare?.rate,
    sse: out.ceiling?.sse?.rate / out.bare?.rate,
  };
  return out;
}

/**
 * The same client resuming from the same cursor against a server that writes the frames Hookstream would send,
 * pre-built in memory: events/s until the last, and the CPU of that server and of the client process. The
 * clients run in fresh processes, one per transport as Hookstream's did: a process that had already taken
 * 100,000 events would be JIT-warm, which Hookstream's clients were not.
 */
async function clientCeiling(ctx, t, store, { cursor, toSeq, timeoutMs }) {
  const label = `catchup · ${store}`;
  const writer = new Worker(FRAME_WRITER);
  const fleet = new Fleet(2);
  const out = {};
  try {
    const fromSeq = cursorSeq(cursor);
    const loaded = await writer.call('load', {
      store,
      natsUrl: t.natsUrl,
      dataDir: t.server.dataDir,
      fromSeq,
      toSeq,
      epoch: cursor.slice(0, cursor.lastIndexOf('_')),
      prefix: SUBJECTS[0].slice(0, -1),
    });
    out.events = loaded.events;
    const { url } = await writer.call('listen');
    for (const transport of ['socketio', 'sse']) {
      ctx.progress(`${label}: client ceiling over ${transport}, ${loaded.events} pre-built frames`);
      const opened = nowMs();
      const meter = cpuMeter([writer.pid, ...fleet.pids]);
      const o = await fleet.open(1, { url, transport, subjects: SUBJECTS, cursor, targetSeq: toSeq, timeoutMs });
      if (!o.opened) throw new Error(`ceiling ${transport} open failed: ${o.errors.join('; ')}`);
      const want = transport === 'socketio' ? 1 : 2;
      const done = await waitFor(async () => (await fleet.stats()).reached >= want, { timeoutMs, everyMs: 20 });
      const [server, ...gens] = meter();
      const s = await fleet.stats(true);
      const c = s.timings[s.timings.length - 1];
      const clientCpu = gens.reduce((a, g) => a + (g?.cpuS ?? 0), 0);
      out[transport] = {
        done,
        received: c.received,
        ok: c.received === loaded.events && c.dups === 0 && c.gaps === 0,
        rate: c.reachedAt ? c.received / ((c.reachedAt - opened) / 1000) : 0,
        serverCores: server?.cores,
        clientCores: Math.max(...gens.map((g) => g?.cores ?? 0)),
        clientUsPerEvent: (clientCpu * 1e6) / c.received,
      };
    }
  } finally {
    await fleet.stop();
    await writer.stop();
  }
  return out;
}
