#!/usr/bin/env node
// Hookstream benchmark suite: `npm run bench [-- options] [scenario ...]`.
//
//   scenarios   ingest ingest-with-schema fanout-socketio fanout-sse e2e catchup storm scale outbound
//               outbound-endpoints   (default: all)
//   --store     jetstream | embedded | both   (default both; `scale` runs on the first store only, `outbound` on
//               JetStream only)
//   --smoke     a few seconds per scenario with small counts; exits non-zero on a correctness failure only
//   --profile   run Hookstream under `node --cpu-prof` and summarise the top self-time functions
//               (profiled figures are slower; use for diagnosis, not for the table)
//   --no-build  use dist/ as it is
//   --out DIR   where to write results (default: bench/results for a full run, bench/results/tmp otherwise)
//   --param K=JSON  override a parameter, e.g. --param 'fanout.clients=200' --param 'scale.curve.steps=[1000,5000]'
//   --dist DIR  run this build of the gateway instead of dist/ (an A/B of a patch; it must sit inside the
//               repository so node_modules resolve)
//
// Every figure is measured against a bare reference in the same run, on the same machine: the ratio is the
// number that holds on a noisy box. Every scenario checks delivery correctness as it measures.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Fleet } from './lib/fleet.mjs';
import { ensureBuilt } from '../test/lib/build.mjs';
import { exitOnSignals } from '../test/lib/procs.mjs';
import { ROOT, useGatewayDist } from './lib/gateway.mjs';
import { withTarget } from './lib/phase.mjs';
import { writeReports, printTable } from './lib/report.mjs';
import { isPeerCheck } from './lib/report-peers.mjs';
import { machineInfo, nowMs } from './lib/util.mjs';
import { ingest, ingestWithSchema } from './scenarios/ingest.mjs';
import { fanout } from './scenarios/fanout.mjs';
import { e2e } from './scenarios/e2e.mjs';
import { catchup } from './scenarios/catchup.mjs';
import { storm } from './scenarios/storm.mjs';
import { scale } from './scenarios/scale.mjs';
import { outbound } from './scenarios/outbound.mjs';
import { outboundEndpoints } from './scenarios/outbound-endpoints.mjs';

exitOnSignals('bench'); // a Ctrl-C leaves no nats-server, gateway or worker behind

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    smoke: { type: 'boolean', default: false },
    store: { type: 'string', default: 'both' },
    profile: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    out: { type: 'string' },
    param: { type: 'string', multiple: true, default: [] },
    dist: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const ALL = [
  'ingest',
  'ingest-with-schema',
  'fanout-socketio',
  'fanout-sse',
  'e2e',
  'catchup',
  'storm',
  'scale',
  'outbound',
  'outbound-endpoints',
];
if (opts.help) {
  process.stdout.write(
    `usage: npm run bench -- [--smoke] [--store jetstream|embedded|both] [--profile] [--no-build] [--out DIR] [--param K=JSON ...] [${ALL.join('|')} ...]\n`,
  );
  process.exit(0);
}
const unknown = positionals.filter((p) => !ALL.includes(p));
if (unknown.length) {
  process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}; known: ${ALL.join(', ')}\n`);
  process.exit(2);
}
const selected = positionals.length ? ALL.filter((s) => positionals.includes(s)) : ALL;
const stores = { both: ['jetstream', 'embedded'], jetstream: ['jetstream'], embedded: ['embedded'] }[opts.store];
if (!stores) {
  process.stderr.write(`--store must be jetstream, embedded or both\n`);
  process.exit(2);
}

// Counts and durations. Full: the figures. Smoke: seconds per scenario, small counts.
const FULL = {
  ingest: { connections: 64, warmupMs: 2_000, roundMs: 3_000, rounds: 3 },
  // 20/s: a load both servers keep up with (latency comparable); 200/s: the figure, beyond what this
  // machine delivers even bare (saturation throughput).
  fanout: {
    clients: 1_000,
    // Published first at the first rate and not counted: a just-started process runs its first deliveries
    // cold (JIT), which alone made the 20/s p99 4x the steady state, for Hookstream and the reference alike.
    warmupEvents: 40,
    rates: [
      { rate: 20, events: 160, drainTimeoutMs: 60_000 },
      { rate: 200, events: 1_000, drainTimeoutMs: 120_000 },
    ],
    // The highest rate with p99 under 250 ms, stepping ×1.5 on the same clients (3 s of publishing per step).
    // From 10/s: Pushpin's p99 was over 250 ms at 25/s × 500 clients on this machine.
    saturation: {
      rates: [10, 15, 25, 40, 60, 90, 135, 200, 300, 450, 675, 1_000],
      seconds: 3,
      p99Ms: 250,
      drainTimeoutMs: 60_000,
    },
    // Pushpin's delivery pacing (its package ships 2,500/s, which alone caps it; see bench/lib/pushpin.mjs).
    pushpin: { messageRate: 1_000_000 },
  },
  e2e: [
    { clients: 1_000, rate: 500, events: 2_500, topics: 100, drainTimeoutMs: 60_000 },
    { clients: 1_000, rate: 20, events: 160, topics: 0, drainTimeoutMs: 60_000 },
  ],
  catchup: { events: 100_000, liveRate: 100, timeoutMs: 180_000 },
  // 10,000 clients, 50 per topic: the steady load stays 10,000 deliveries/s, so the storm is what is measured.
  storm: {
    clients: 10_000,
    topics: 200,
    rate: 200,
    preStormMs: 4_000,
    postLiveMs: 2_000,
    timeoutMs: 120_000,
    // The load clients' nice value during the storm (see scenarios/storm.mjs); 0 shares the CPU evenly.
    clientNice: 10,
  },
  scale: {
    // Memory per idle connection, per transport: the slope of settled RSS over these client counts.
    memory: { levels: [1_000, 5_000, 10_000], rssSamples: 5 },
    // The curve: half Socket.IO, half SSE, each client on one of 1,000 topics and the broadcast subject; at each
    // step a burst of 10 events to every client, then 1,000 events/s over the topics (≈1/s per client) for 10 s.
    curve: {
      steps: [1_000, 5_000, 10_000, 25_000, 50_000],
      topics: 1_000,
      topicRate: 1_000,
      topicSeconds: 10,
      broadcast: { events: 10, rate: 100, drainTimeoutMs: 120_000 },
      drainTimeoutMs: 120_000,
      // Client processes of up to 5,000 clients each (10 for 50,000), each from its own loopback address.
      perProcess: 5_000,
      // Open files wanted per process: the gateway holds every connection (raised only where allowed).
      fdLimit: 120_000,
      rssSamples: 5,
    },
  },
  // Events/s spread evenly over the endpoints (endpoint i gets topic i); the outage on the `down.endpoints` level.
  outbound: {
    endpoints: [1, 10, 100],
    rate: 1_000,
    events: 30_000,
    drainTimeoutMs: 60_000,
    down: { endpoints: 10, ms: 60_000, drainTimeoutMs: 120_000 },
  },
  // Registered endpoints in steps (API, 8 creates at a time), each idle step measured, then 3 events per endpoint.
  outboundEndpoints: {
    levels: [250, 1_000],
    createConcurrency: 8,
    settleMs: 5_000,
    idleMs: 10_000,
    rssSamples: 5,
    eventsPerEndpoint: 3,
    rate: 300,
    drainTimeoutMs: 120_000,
  },
  processes: 4,
  settleMs: 1_000,
};
const SMOKE = {
  ingest: { connections: 64, warmupMs: 500, roundMs: 1_500, rounds: 1 },
  fanout: {
    clients: 20,
    warmupEvents: 10,
    rates: [{ rate: 500, events: 1_000, drainTimeoutMs: 30_000 }],
    saturation: { rates: [200, 800], seconds: 1, p99Ms: 250, drainTimeoutMs: 30_000 },
    pushpin: { messageRate: 1_000_000 },
  },
  e2e: [
    { clients: 20, rate: 200, events: 400, topics: 5, drainTimeoutMs: 30_000 },
    { clients: 20, rate: 200, events: 200, topics: 0, drainTimeoutMs: 30_000 },
  ],
  catchup: { events: 5_000, liveRate: 100, timeoutMs: 60_000 },
  storm: { clients: 100, topics: 5, rate: 200, preStormMs: 1_000, postLiveMs: 500, timeoutMs: 60_000, clientNice: 10 },
  scale: {
    memory: { levels: [20, 100], rssSamples: 2 },
    curve: {
      steps: [40, 100],
      topics: 10,
      topicRate: 20,
      topicSeconds: 2,
      broadcast: { events: 5, rate: 50, drainTimeoutMs: 30_000 },
      drainTimeoutMs: 30_000,
      perProcess: 50,
      fdLimit: 4_096,
      rssSamples: 2,
    },
  },
  outbound: {
    endpoints: [1, 10, 100],
    rate: 1_000,
    events: 2_000,
    drainTimeoutMs: 30_000,
    down: { endpoints: 10, ms: 3_000, drainTimeoutMs: 30_000 },
  },
  outboundEndpoints: {
    levels: [20, 50],
    createConcurrency: 8,
    settleMs: 500,
    idleMs: 1_000,
    rssSamples: 2,
    eventsPerEndpoint: 2,
    rate: 200,
    drainTimeoutMs: 30_000,
  },
  processes: 2,
  settleMs: 200,
};
const P = opts.smoke ? SMOKE : FULL;
for (const kv of opts.param) {
  const i = kv.indexOf('=');
  const path = kv.slice(0, i).split('.');
  let node = P;
  for (const k of path.slice(0, -1)) node = node[k];
  node[path.at(-1)] = JSON.parse(kv.slice(i + 1));
}

// ---- progress: one line, rewritten in place on a terminal; throttled lines otherwise --------------------
const tty = process.stderr.isTTY;
let lastLine = '';
let lastPrint = 0;
const t0 = Date.now();
function progress(text) {
  const line = `[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${text}`;
  if (tty) {
    process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns || 120) - 1)}`);
  } else if (text !== lastLine && Date.now() - lastPrint >= 1_000) {
    process.stderr.write(`${line}\n`);
    lastPrint = Date.now();
  }
  lastLine = text;
}
function say(text) {
  if (tty) process.stderr.write('\r\x1b[K');
  process.stderr.write(`${text}\n`);
}

say(
  `hookstream bench: ${opts.smoke ? 'smoke' : 'full'} run; scenarios ${selected.join(', ')}; stores ${stores.join(', ')}`,
);
if (opts.dist) {
  useGatewayDist(opts.dist);
  say(`gateway build: ${opts.dist}`);
} else if (!opts['no-build']) say(`build: ${ensureBuilt({ log: say })}`);

const machine = machineInfo();
machine.loadAtStart = loadavg().map((v) => Math.round(v * 100) / 100);
/** Which code was measured: the commit, and whether src/ had uncommitted changes. */
function codeInfo() {
  try {
    const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      srcUncommitted: git('status', '--porcelain', '--', 'src').length > 0,
    };
  } catch {
    return { commit: 'unknown', srcUncommitted: null };
  }
}
const code = codeInfo();
say(
  `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.ramGiB} GiB, Node ${machine.node}, nats-server ${machine.natsServer}`,
);

const fleet = new Fleet(P.processes);
const ctx = {
  P,
  smoke: opts.smoke,
  fleet,
  progress,
  say,
  profileName: (scenario, store, kind) => (opts.profile && kind === 'hookstream' ? `${scenario}-${store}` : undefined),
};

const results = [];
let failed = false;
async function runOne(name, store, fn) {
  const started = nowMs();
  progress(`${name} · ${store}: starting`);
  try {
    withTarget.lastProfile = undefined;
    const r = await fn();
    r.seconds = (nowMs() - started) / 1000;
    if (opts.profile) r.profile = withTarget.lastProfile;
    results.push(r);
    const bad = r.checks.filter((c) => !c.ok && !c.warnOnly && c.who === 'hookstream');
    const warn = r.checks.filter((c) => !c.ok && (c.warnOnly || c.who !== 'hookstream'));
    say(`${name} · ${store}: done in ${r.seconds.toFixed(0)} s${bad.length ? ' — CORRECTNESS FAILURE' : ''}`);
    for (const c of [...bad, ...warn])
      say(
        `   ${c.ok ? 'ok' : isPeerCheck(c) ? 'peer' : c.warnOnly || c.who !== 'hookstream' ? 'warning' : 'FAIL'} [${c.who}] ${c.what}: ${c.detail}`,
      );
    if (bad.length) failed = true;
  } catch (err) {
    failed = true;
    say(`${name} · ${store}: ERROR ${err?.stack ?? err}`);
    results.push({ scenario: name, store, error: String(err?.message ?? err), checks: [] });
  }
}

try {
  for (const name of selected) {
    const runStores =
      name === 'scale' ? stores.slice(0, 1) : name === 'outbound' ? stores.filter((s) => s === 'jetstream') : stores;
    if (!runStores.length) say(`${name}: skipped (JetStream only; run with --store jetstream or both)`);
    for (const store of runStores) {
      switch (name) {
        case 'ingest':
          await runOne(name, store, () => ingest(ctx, store));
          break;
        case 'ingest-with-schema':
          await runOne(name, store, () => ingestWithSchema(ctx, store));
          break;
        case 'fanout-socketio':
          await runOne(name, store, () => fanout(ctx, store, 'socketio'));
          break;
        case 'fanout-sse':
          await runOne(name, store, () => fanout(ctx, store, 'sse'));
          break;
        case 'e2e':
          await runOne(name, store, () => e2e(ctx, store));
          break;
        case 'catchup':
          await runOne(name, store, () => catchup(ctx, store));
          break;
        case 'storm':
          await runOne(name, store, () => storm(ctx, store));
          break;
        case 'scale':
          await runOne(name, store, () => scale(ctx, store));
          break;
        case 'outbound':
          await runOne(name, store, () => outbound(ctx, store));
          break;
        case 'outbound-endpoints':
          await runOne(name, store, () => outboundEndpoints(ctx, store));
          break;
      }
    }
  }
} finally {
  await fleet.stop();
}

// Only a plain full run (every scenario, both stores, stock build, no profiler, no overrides) is "latest".
machine.loadAtEnd = loadavg().map((v) => Math.round(v * 100) / 100);
const full =
  !opts.smoke &&
  selected.length === ALL.length &&
  stores.length === 2 &&
  !opts.profile &&
  !opts.dist &&
  !opts.param.length;
const outDir = opts.out ?? (full ? join(ROOT, 'bench', 'results') : join(ROOT, 'bench', 'results', 'tmp'));
mkdirSync(outDir, { recursive: true });
const run = {
  when: new Date().toISOString(),
  mode: opts.smoke ? 'smoke' : 'full',
  profiled: opts.profile,
  gatewayBuild: opts.dist ?? 'dist',
  code,
  scenarios: selected,
  stores,
  machine,
  params: P,
  seconds: (Date.now() - t0) / 1000,
  correctness: failed ? 'FAILED' : 'passed',
  results,
};
const base = full ? 'latest' : opts.smoke ? 'smoke' : 'partial';
const files = writeReports(run, outDir, base);
if (tty) process.stderr.write('\r\x1b[K');
printTable(run);
say(`\nresults: ${files.join(', ')}`);
say(`correctness: ${run.correctness}; ${run.seconds.toFixed(0)} s in all`);
process.exit(failed ? 1 : 0);
