// One measured phase: a fresh nats-server (JetStream) or temp dir (embedded), a fresh Hookstream gateway or
// bare reference on it, the body of the phase, and everything stopped afterwards. Plus meters.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { NatsServerProcess } from '../../test/lib/nats-server.mjs';
import { ROOT, startGateway, startRef } from './gateway.mjs';
import { startPushpin } from './pushpin.mjs';
import { newestProfile, summariseProfile } from './profile.mjs';
import { cpuOf, nowMs, rssOf, sleep } from './util.mjs';

export const PROFILE_ROOT = join(ROOT, 'bench', 'results', 'tmp', 'profiles');

/**
 * Runs fn(target) against a fresh server. `kind`: 'hookstream' | 'bare' | 'pushpin' (the peer, with its GRIP
 * origin); `ref`: the bare reference script ('ref-ingest' | 'ref-fanout'); `profile`: a name to run Hookstream
 * under --cpu-prof (summary returned); `pushpin`: options for startPushpin. `pids` lists every process the
 * target's CPU and RSS are summed over. `shards` > 1 (JetStream only): that many servers of the kind on the
 * one stream, each on its own port (`urls`), as replicas a client population is spread over.
 */
export async function withTarget({ store, kind, ref, config, profile, pushpin, shards = 1 }, fn) {
  const nats = store === 'jetstream' ? await NatsServerProcess.start() : null;
  let server;
  const more = [];
  const profileDir = profile ? join(PROFILE_ROOT, profile) : undefined;
  let readyUs = 0;
  if (profileDir && kind === 'hookstream') rmSync(profileDir, { recursive: true, force: true });
  try {
    server =
      kind === 'hookstream'
        ? await startGateway({ store, natsUrl: nats?.url, profileDir, config })
        : kind === 'pushpin'
          ? await startPushpin({ store, natsUrl: nats?.url, ...pushpin })
          : await startRef(ref, { store, natsUrl: nats?.url });
    for (let i = 1; i < shards; i++) {
      more.push(
        kind === 'hookstream'
          ? await startGateway({ store, natsUrl: nats?.url, profileDir, config })
          : await startRef(ref, { store, natsUrl: nats?.url }),
      );
    }
    readyUs = Number(process.hrtime.bigint() / 1000n);
    const target = {
      kind,
      store,
      url: server.url,
      urls: [server.url, ...more.map((m) => m.url)],
      pid: server.pid,
      pids: [...(server.pids ?? [server.pid]), ...more.map((m) => m.pid)],
      publishUrl: server.publishUrl ?? server.url,
      cpuParts: server.cpuParts,
      natsUrl: nats?.url,
      natsPid: nats?.pid,
      server,
    };
    const result = await fn(target);
    return result;
  } finally {
    if (kind === 'hookstream') for (const s of [server, ...more]) reportWarnings(s, store);
    await server?.stop().catch(() => undefined);
    for (const m of more) await m.stop().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    if (profileDir && kind === 'hookstream') {
      const file = newestProfile(profileDir);
      if (file) withTarget.lastProfile = summariseProfile(file, { fromUs: readyUs });
    }
  }
}

/** Summed over a group of pids (one target made of several processes); null when all are gone. */
function summed(read, p) {
  if (!Array.isArray(p)) return read(p);
  const values = p.map(read).filter((v) => v !== null);
  return values.length ? values.reduce((a, b) => a + b, 0) : null;
}

/**
 * CPU seconds used by pids between start() and the returned end(); `cores` = CPU s per wall s. An entry may
 * be an array of pids: their sum.
 */
export function cpuMeter(pids) {
  const t0 = nowMs();
  const c0 = pids.map((p) => (p ? summed(cpuOf, p) : null));
  return () => {
    const elapsed = (nowMs() - t0) / 1000;
    return pids.map((p, i) => {
      if (!p || c0[i] === null) return null;
      const used = (summed(cpuOf, p) ?? c0[i]) - c0[i];
      return { cpuS: used, cores: used / elapsed };
    });
  };
}

/**
 * The kernel's listen-queue counters (TcpExt ListenOverflows / ListenDrops, for the whole network namespace) and
 * its accept-queue cap (net.core.somaxconn): a burst of connects larger than the cap has SYNs dropped, and each
 * such client waits for its SYN to be sent again (1 s, then 3 s, 7 s, …). Nulls where /proc does not tell.
 */
export function listenQueue() {
  const read = (f) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return null;
    }
  };
  const out = { overflows: null, drops: null, somaxconn: null };
  const cap = Number(read('/proc/sys/net/core/somaxconn'));
  if (Number.isFinite(cap) && cap > 0) out.somaxconn = cap;
  const lines = (read('/proc/net/netstat') ?? '').split('\n').filter((l) => l.startsWith('TcpExt:'));
  if (lines.length >= 2) {
    const keys = lines[0].trim().split(/\s+/);
    const values = lines[1].trim().split(/\s+/);
    const at = (k) => {
      const i = keys.indexOf(k);
      return i > 0 ? Number(values[i]) : null;
    };
    out.overflows = at('ListenOverflows');
    out.drops = at('ListenDrops');
  }
  return out;
}

/** Median of a few RSS samples `everyMs` apart (bytes); `pid` may be an array of pids (summed). */
export async function settledRss(pid, samples = 5, everyMs = 300) {
  const values = [];
  for (let i = 0; i < samples; i++) {
    values.push(summed(rssOf, pid));
    if (i < samples - 1) await sleep(everyMs);
  }
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)];
}

/** Prometheus text → {name: summed value} (labels summed). */
export async function scrapeMetrics(url) {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const out = {};
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (m) out[m[1]] = (out[m[1]] ?? 0) + Number(m[3]);
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * The gateway's warnings and errors (pino lines of level 40 and up) during a phase, counted by message and
 * printed: a stalled feed, a slow consumer or a failed store call then leaves evidence beside the figures it
 * explains. Each message says when it was logged (first and last), in the seconds of the progress lines, so a
 * warning of a phase of several steps (the scale curve) can be placed in its step.
 */
function reportWarnings(server, store) {
  const counts = new Map();
  for (const line of server?.output?.().split('\n') ?? []) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line);
      if (entry.level < 40) continue;
      const t = typeof entry.time === 'string' ? Date.parse(entry.time) : entry.time;
      const at = Number.isFinite(t) ? Math.round((t - performance.timeOrigin) / 1000) : null;
      const c = counts.get(entry.msg) ?? { n: 0, first: at, last: at };
      c.n++;
      c.last = at;
      counts.set(entry.msg, c);
    } catch {
      // a line cut by the capture's size limit
    }
  }
  if (!counts.size) return;
  const when = ({ first, last }) => (first === null ? '' : first === last ? ` (${first} s)` : ` (${first}–${last} s)`);
  const list = [...counts].map(([msg, c]) => `${c.n} × ${msg}${when(c)}`).join('; ');
  process.stderr.write(`   gateway (${store}) logged warnings: ${list}\n`);
}
