#!/usr/bin/env node
/**
 * Soak (`npm run test:soak`, `-- --minutes N`, default 10; not in CI).
 *
 * One nats-server and one gateway process (`node dist/main.js`). A steady load of signed webhooks (default
 * 100/s) and a steady population of subscribers (default 200: 80 % Socket.IO, 20 % SSE, on patterns of
 * different widths) that keeps changing: every `churn` ms one client leaves and a new one joins, most of them
 * resuming from the cursor a departed client had (served from the ring or, for some, from the stream).
 *
 * Sampled from the gateway's /metrics every 2 s: resident memory, V8 heap used, open file descriptors and
 * connected clients. Reported: the least-squares slope of RSS and heap over the second half (bytes/min, with
 * its standard error), open fds before any client and after every client left, the stream's consumer count
 * and the gateway connection's NATS subscription count (monitoring /connz) before and after.
 * Exits non-zero when fds, consumers or subscriptions do not return to their baseline, when the heap's floor
 * (its 30 s minima, what survives GC) grows by more than `--tolerance-mib` (16) over the second half (slope ×
 * half duration), when RSS grows by more than that or 10 % of its mean, whichever is larger, or when a client
 * saw a gap, a duplicate or an out-of-order delivery. The figures and the report are in lib/soak-report.mjs.
 */
import { mkdtempSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ensureBuilt } from '../lib/build.mjs';
import { NatsCluster } from '../lib/nats-server.mjs';
import { exitOnSignals, sleep, waitUntil } from '../lib/procs.mjs';
import { Gateway } from './lib/gateway.mjs';
import { Producer, sourcesConfig } from './lib/producer.mjs';
import { StreamInspector } from './lib/stream.mjs';
import { SocketSubscriber, SseSubscriber } from './lib/subscribers.mjs';
import { log, mib, parseArgs, prng } from './lib/report.mjs';
import { soakReport } from './lib/soak-report.mjs';

const args = parseArgs(process.argv.slice(2));
const MINUTES = Number(args.minutes ?? 10);
const RATE = Number(args.rate ?? 100);
const CLIENTS = Number(args.clients ?? 200);
const CHURN_MS = Number(args.churn ?? 500);
const TOLERANCE = Number(args['tolerance-mib'] ?? 16) * 1024 * 1024;
const SEED = Number(args.seed ?? Date.now() % 1_000_000);
const SAMPLE_MS = 2_000;
const STREAM = 'SOAK';
const JWT_SECRET = 'soak-jwt-secret-0123456789-abcdefghijklmnopq';
const random = prng(SEED);

const PATTERNS = [
  ['events.>'],
  ['events.acme.>'],
  ['events.beta.>'],
  ['events.*.invoice.paid'],
  ['events.acme.order.*'],
  ['events.acme.order.created', 'events.beta.user.*'],
  ['events.beta.ping'],
  ['events.acme.user.signup'],
  ['events.beta.user.login'],
  ['events.*.invoice.*'],
];
// Narrow patterns more often than `events.>`, so 200 clients stay a moderate load on two cores.
const PATTERN_WEIGHTS = [1, 1, 1, 2, 2, 2, 3, 3, 3, 2];

const failures = [];
const fail = (what) => {
  failures.push(what);
  log(`FAILURE: ${what}`);
};

const dir = mkdtempSync(join(tmpdir(), 'hookstream-soak-'));
let cluster;
let inspector;
let gateway;

function pickPatterns() {
  const total = PATTERN_WEIGHTS.reduce((a, b) => a + b, 0);
  let r = random() * total;
  for (let i = 0; i < PATTERNS.length; i++) {
    r -= PATTERN_WEIGHTS[i];
    if (r < 0) return PATTERNS[i];
  }
  return PATTERNS[0];
}

async function natsSubscriptions(node) {
  const res = await fetch(`http://127.0.0.1:${node.monitorPort}/connz?subs=1`, { signal: AbortSignal.timeout(5_000) });
  const body = await res.json();
  const mine = (body.connections ?? []).filter((c) => (c.name ?? '').startsWith('hookstream-'));
  return mine.reduce((n, c) => n + (c.subscriptions ?? 0), 0);
}

const FD = 'hookstream_process_open_fds';
const RSS = 'hookstream_process_resident_memory_bytes';
const HEAP = 'hookstream_nodejs_heap_size_used_bytes';
const HEAP_TOTAL = 'hookstream_nodejs_heap_size_total_bytes';
const EXTERNAL = 'hookstream_nodejs_external_memory_bytes';
const CPU = 'hookstream_process_cpu_seconds_total';
/** A metric summed over its labels (per transport). */
const total = (m, name) =>
  Object.entries(m)
    .filter(([k]) => k === name || k.startsWith(`${name}{`))
    .reduce((n, [, v]) => n + v, 0);
const clientsOf = (m) => total(m, 'hookstream_connected_clients');

async function main() {
  exitOnSignals(); // a Ctrl-C leaves no nats-server or gateway behind
  log(`soak: ${MINUTES} min, ${RATE} webhooks/s, ${CLIENTS} clients, one leaves and one joins every ${CHURN_MS} ms`);
  log(`logs in ${dir}`);
  if (!args['no-build']) ensureBuilt({ log: (line) => process.stderr.write(`${line}\n`) });
  cluster = await NatsCluster.start(dir, { size: 1 });
  const node = cluster.nodes[0];
  inspector = await StreamInspector.open(cluster.urls, STREAM);
  gateway = await Gateway.start(
    'soak',
    dir,
    {
      stream: { name: STREAM, replicas: 1, maxAge: '1d' },
      sources: sourcesConfig(),
      auth: { jwt: { secret: JWT_SECRET }, anonymous: { subscribe: [] } },
    },
    { NATS_URL: cluster.urls, LOG_LEVEL: 'warn' },
  );
  if (!(await waitUntil(() => gateway.ready(), 30_000, 200))) throw new Error('the gateway did not become ready');
  const token = await new SignJWT({ subscribe: ['events.>'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('soak')
    .setIssuedAt()
    .setExpirationTime(`${MINUTES + 30}m`)
    .sign(new TextEncoder().encode(JWT_SECRET));

  // Baselines, before any client or webhook.
  await sleep(2_000);
  const before = await gateway.metrics([FD, RSS, HEAP]);
  const consumersBefore = await inspector.consumerCount();
  const subsBefore = await natsSubscriptions(node);
  log(
    `baseline: ${before[FD]} fds, ${consumersBefore} consumers, ${subsBefore} NATS subscriptions, RSS ${mib(before[RSS])}`,
  );

  const urls = () => [gateway.url];
  const producer = new Producer({ urls, rate: RATE, timeoutMs: 10_000 });
  const active = new Set();
  const departed = [];
  /** Cursors left behind by departed clients, with when they left: joiners resume from them. */
  const cursors = [];
  let made = 0;
  const join_ = (start) => {
    const sse = random() < 0.2;
    const Cls = sse ? SseSubscriber : SocketSubscriber;
    const sub = new Cls({
      name: `${sse ? 'sse' : 'sio'}${made++}`,
      urls,
      first: 0,
      token,
      patterns: pickPatterns(),
      start,
      // No faults here: only a real disconnect (or a long silence) makes a client resume.
      silenceMs: 120_000,
    });
    sub.start();
    active.add(sub);
  };
  const leave = async (sub) => {
    active.delete(sub);
    await sub.stop();
    departed.push(sub);
    if (sub.cursor) cursors.push({ cursor: sub.cursor, at: Date.now() });
    // At most 3 minutes back: deep resumes read up to ~18k events from the stream, past the ring's 10k.
    while (cursors.length && cursors[0].at < Date.now() - 180_000) cursors.shift();
  };
  const startFor = () => {
    const r = random();
    if (cursors.length === 0 || r < 0.25) return { from: 'latest' };
    if (r < 0.3) {
      // A deep resume: the oldest cursor kept (minutes back, beyond the ring): read from the stream.
      return { cursor: cursors[0].cursor };
    }
    return { cursor: cursors[Math.floor(random() * cursors.length)].cursor };
  };

  producer.start();
  for (let i = 0; i < CLIENTS; i++) join_({ from: 'latest' });
  const t0 = Date.now();
  const endAt = t0 + MINUTES * 60_000;

  const samples = [];
  const sampleLog = createWriteStream(join(dir, 'samples.jsonl'));
  const sampler = setInterval(async () => {
    try {
      const m = await gateway.metrics([
        FD,
        RSS,
        HEAP,
        HEAP_TOTAL,
        EXTERNAL,
        CPU,
        'hookstream_connected_clients',
        'hookstream_deliveries_total',
      ]);
      const row = {
        t: Date.now() - t0,
        rss: m[RSS],
        heap: m[HEAP],
        heapTotal: m[HEAP_TOTAL],
        external: m[EXTERNAL],
        fds: m[FD],
        clients: clientsOf(m),
        deliveries: total(m, 'hookstream_deliveries_total'),
        cpu: m[CPU],
        selfCpu: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
      };
      samples.push(row);
      sampleLog.write(`${JSON.stringify(row)}\n`);
    } catch (err) {
      log(`sample failed: ${err?.message ?? err}`);
    }
  }, SAMPLE_MS);
  const progress = setInterval(() => {
    const last = samples.at(-1);
    if (!last) return;
    log(
      `  ${Math.round(last.t / 1000)} s: RSS ${mib(last.rss)}, heap ${mib(last.heap)}, fds ${last.fds}, ` +
        `clients ${last.clients}, webhooks acked ${producer.acknowledged}/${producer.created}, joins ${made}`,
    );
  }, 60_000);

  while (Date.now() < endAt) {
    await sleep(CHURN_MS);
    const list = [...active];
    const victim = list[Math.floor(random() * list.length)];
    if (victim) await leave(victim);
    join_(startFor());
  }

  clearInterval(progress);
  log('load done: every client leaves, the provider finishes');
  await Promise.all([...active].map((s) => leave(s)));
  await producer.finish(30_000);
  clearInterval(sampler);

  // Back to baseline? Wait (bounded) for the gateway to see every client gone and idle HTTP sockets closed.
  let after = {};
  await waitUntil(
    async () => {
      after = await gateway.metrics([FD, RSS, HEAP, 'hookstream_connected_clients']);
      return clientsOf(after) === 0 && after[FD] <= before[FD];
    },
    30_000,
    500,
  );
  const consumersAfter = await inspector.consumerCount();
  const subsAfter = await natsSubscriptions(node);

  const summary = soakReport({
    minutes: MINUTES,
    rate: RATE,
    clients: CLIENTS,
    tolerance: TOLERANCE,
    samples,
    producer,
    departed,
    made,
    before,
    after,
    consumersBefore,
    consumersAfter,
    subsBefore,
    subsAfter,
    failures,
    fail,
  });
  writeFileSync(join(dir, 'summary.json'), JSON.stringify(summary, null, 2));
}

let exitCode = 1;
try {
  await main();
  exitCode = failures.length ? 1 : 0;
} catch (err) {
  fail(`the run itself failed: ${err?.stack ?? err}`);
}
try {
  await inspector?.close();
  await gateway?.kill('SIGTERM');
  await cluster?.stop();
} catch {
  // the exit handler SIGKILLs whatever is left
}
if (exitCode === 0) {
  console.log('\nsoak: PASS');
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
} else {
  console.log(`\nsoak: FAIL (${failures.length} failure(s)); logs kept in ${dir}`);
}
process.exit(exitCode);
