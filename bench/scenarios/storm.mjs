// Scenario 6 — reconnect storm: N Socket.IO clients are connected while events flow at a fixed rate; all
// drop their connections at once and reconnect with their cursors. Time until every client is live again (it
// received an event published after its resubscribe was acked), and gaps / duplicates across all clients.
// With `topics` T > 0 events are spread over T topics and each client watches one (N/T clients per event),
// so the steady load fits the machine and the storm itself is what is measured.
import { setPriority } from 'node:os';
import { cpuMeter, listenQueue, withTarget } from '../lib/phase.mjs';
import { Histogram, sleep } from '../lib/util.mjs';
import { openCheck, publisherFor, SUBJECTS } from './common.mjs';

export async function storm(ctx, store) {
  const P = ctx.P.storm;
  const out = { scenario: 'storm', store, params: P, checks: [], notes: [] };
  const label = `storm · ${store}`;
  out.hookstream = await withTarget(
    { store, kind: 'hookstream', profile: ctx.profileName('storm', store, 'hookstream') },
    async (t) => {
      const pub = await publisherFor(t);
      try {
        ctx.progress(`${label}: connecting ${P.clients} clients`);
        const o = await ctx.fleet.open(P.clients, {
          url: t.url,
          transport: 'socketio',
          subjects: SUBJECTS,
          topics: P.topics,
        });
        out.checks.push(openCheck('hookstream', P.clients, o.opened, o.errors));
        await pub.call('start', {
          mode: pub.mode,
          url: t.url,
          rate: P.rate,
          durationMs: P.timeoutMs + 60_000,
          topics: P.topics,
        });
        await sleep(P.preStormMs);

        ctx.progress(`${label}: every client drops and reconnects`);
        // Where the storm's CPU goes: the gateway's share against the client processes' (socket.io-client's own
        // connect and handshake work is on the same two cores).
        const meter = cpuMeter([t.pid, t.natsPid, ctx.fleet.pids]);
        // How many connects the kernel refused for a full accept queue (each waits for a SYN retry, 1 s or more).
        const queue0 = listenQueue();
        if (yieldCpu(ctx.fleet.pids, P.clientNice)) {
          out.notes.push(
            `the client processes ran at nice ${P.clientNice} during the storm (the gateway and nats-server at 0)`,
          );
        }
        let at;
        try {
          const starts = await ctx.fleet.each('storm', { timeoutMs: P.timeoutMs });
          at = Math.min(...starts.map((x) => x.at));
          const deadline = Date.now() + P.timeoutMs;
          for (;;) {
            const s = await ctx.fleet.stats();
            ctx.progress(`${label}: ${s.connected}/${s.clients} reconnected, ${s.live} live again`);
            if (s.live >= o.opened || Date.now() > deadline) break;
            await sleep(100);
          }
        } finally {
          yieldCpu(ctx.fleet.pids, 0);
        }
        const [gateway, nats, clients] = meter();
        const queue1 = listenQueue();
        await sleep(P.postLiveMs);
        await pub.call('stopPublishing');
        const published = await pub.call('wait');
        const lastSeq = published.maxSeq;
        const targets = { lastSeq, lastByTopic: published.lastByTopic };
        await ctx.fleet.drained(targets, 60_000, (x) => ctx.progress(`${label}: draining, ${x.behind} clients behind`));
        const v = await ctx.fleet.verify({ lastSeq, seqsByTopic: published.seqsByTopic });
        const full = await ctx.fleet.stats(true);
        const perClient = new Histogram();
        let allLive = 0;
        for (const c of full.timings) {
          if (!c.liveAt) continue;
          perClient.add(c.liveAt - c.reconnectAt);
          allLive = Math.max(allLive, c.liveAt);
        }
        return {
          clients: full.clients,
          liveAgain: full.live,
          allLiveS: full.live >= o.opened ? (allLive - at) / 1000 : null,
          p50: perClient.quantile(0.5),
          p99: perClient.quantile(0.99),
          gaps: v.gaps,
          dups: v.dups,
          lost: v.missing,
          incomplete: v.incomplete,
          unexpected: v.unexpected,
          topics: P.topics,
          gapNotices: full.gapNotices,
          reconnectErrors: full.errors,
          errorReasons: full.errorReasons,
          cpuS: { gateway: gateway?.cpuS, nats: nats?.cpuS, clients: clients?.cpuS },
          listenQueue: {
            somaxconn: queue1.somaxconn,
            overflows:
              queue0.overflows === null || queue1.overflows === null ? null : queue1.overflows - queue0.overflows,
          },
          published: published.ok,
          lastSeq,
        };
      } finally {
        await pub.stop();
        await ctx.fleet.closeAll();
      }
    },
  );
  const h = out.hookstream;
  out.checks.push({
    who: 'hookstream',
    what: 'after the storm every client resumed exactly: no gap, no duplicate, nothing lost',
    ok: h.gaps === 0 && h.dups === 0 && h.lost === 0 && h.incomplete === 0 && h.unexpected === 0,
    detail: `${h.clients} clients, ${h.liveAgain} live again; gaps ${h.gaps}, duplicates ${h.dups}, lost ${h.lost}, gap notices ${h.gapNotices}; failed opens (retried) ${h.reconnectErrors}${h.reconnectErrors ? `: ${JSON.stringify(h.errorReasons)}` : ''}`,
  });
  out.checks.push({
    who: 'hookstream',
    what: 'every client was live again before the timeout',
    ok: h.allLiveS !== null,
    warnOnly: true,
    detail: `${h.liveAgain}/${h.clients}`,
  });
  return out;
}

/**
 * Sets the client processes' nice value (reset to 0 after the storm). With `clientNice` > 0 the load clients take a
 * core only when the gateway and nats-server leave one free, as they would if they ran on other machines: on two
 * cores, four busy client processes would otherwise get four fifths of the CPU the scheduler shares out, and the
 * gateway the rest. Only as root, the one user that may set the value back to 0 (the fleet serves later scenarios).
 * Returns whether it was applied.
 */
function yieldCpu(pids, nice) {
  if (!nice && nice !== 0) return false;
  if (process.getuid?.() !== 0) return false;
  try {
    for (const pid of pids) setPriority(pid, nice);
    return true;
  } catch {
    return false;
  }
}
