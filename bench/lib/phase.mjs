// One measured phase: a fresh nats-server (JetStream) or temp dir (embedded), a fresh Hookstream gateway or
// bare reference on it, the body of the phase, and everything stopped afterwards. Plus meters.
import { rmSync } from 'node:fs';
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
 * explains.
 */
function reportWarnings(server, store) {
  const counts = new Map();
  for (const line of server?.output?.().split('\n') ?? []) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line);
      if (entry.level >= 40) counts.set(entry.msg, (counts.get(entry.msg) ?? 0) + 1);
    } catch {
      // a line cut by the capture's size limit
    }
  }
  if (!counts.size) return;
  const list = [...counts].map(([msg, n]) => `${n} × ${msg}`).join('; ');
  process.stderr.write(`   gateway (${store}) logged warnings: ${list}\n`);
}
