#!/usr/bin/env node
/**
 * Chaos with invariants (`npm run test:chaos`, `npm run test:chaos -- --short`).
 *
 * A 3-node JetStream cluster (R3 stream) and two gateway processes (`node dist/main.js`, NATS_URL listing all
 * three servers). A provider POSTs signed webhooks without pause and retries every non-2xx and every network
 * error with backoff and the same delivery id; 20 Socket.IO and 5 SSE clients, spread over both gateways and
 * partly on narrow patterns, resume by cursor on any gateway whenever they lose their connection. Meanwhile,
 * on a schedule: kill -9 a NATS node and restart it; kill -9 a gateway and restart it; SIGSTOP a gateway
 * for longer than the clients' dead-peer detection, then SIGCONT; kill the stream leader (found through
 * `$JS.API.STREAM.INFO` → cluster.leader) and restart it.
 *
 * Outbound webhooks ride along (lib/outbound.mjs): four endpoints, registered through the API before the first
 * webhook, deliver to receivers in this process — one healthy, one refusing connections for a long stretch, one
 * flapping between 2xx, 500 and no answer, one FIFO — with a retry schedule short enough for the run.
 *
 * Then, from the records and the stream itself (read through the NATS API):
 *  - every webhook that got a 2xx is stored exactly once (Nats-Msg-Id → count), at the seq the 2xx named;
 *  - no 2xx for an event that is not in the stream;
 *  - every client received every matching stored event after its start, exactly once, in stream order,
 *    across all its reconnects; a gap notice counts as a failure (retention removes nothing here);
 *  - after a drain, every stored event reached every matching endpoint with a 2xx, every request verifies with
 *    `standardwebhooks`, a 2xx twice only where a fault could have lost the first, the FIFO endpoint in order.
 * Exits non-zero on any loss, duplicate, reorder, gap, unacknowledged webhook or a replica that does not
 * recover. Options: --short (about a minute, CI), --minutes N (full run, default 10), --rate N (webhooks/s),
 * --seed N, --keep (keep logs and stores; they are always kept on failure), --no-build (run dist/ as it is;
 * by default it is rebuilt when older than src/).
 *
 * This file runs the scenario; the parts live in lib/: the plan (lib/plan.mjs), the faults (lib/faults.mjs),
 * the timeline (lib/monitor.mjs), the invariants (lib/invariants.mjs), the recovery figures
 * (lib/recovery.mjs) and the report (lib/run-report.mjs).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ensureBuilt } from '../lib/build.mjs';
import { NatsCluster } from '../lib/nats-server.mjs';
import { exitOnSignals, sleep, waitUntil } from '../lib/procs.mjs';
import { FaultInjector } from './lib/faults.mjs';
import { Gateway } from './lib/gateway.mjs';
import { judge } from './lib/judge.mjs';
import { checkClients, checkIngest, checkOutbound } from './lib/invariants.mjs';
import { liveTapStalls, startMonitor } from './lib/monitor.mjs';
import { ENDPOINTS, outboundConfig, OutboundChaos } from './lib/outbound.mjs';
import { faultPlan, gatewayConfig, joinPlan, LAYOUT } from './lib/plan.mjs';
import { Producer } from './lib/producer.mjs';
import { answerTimes, recoveryTimes } from './lib/recovery.mjs';
import { log, parseArgs, prng } from './lib/report.mjs';
import { report } from './lib/run-report.mjs';
import { StreamInspector } from './lib/stream.mjs';
import { SocketSubscriber, SseSubscriber } from './lib/subscribers.mjs';

const args = parseArgs(process.argv.slice(2));
const SHORT = !!args.short;
const RUN_MS = SHORT ? 60_000 : Number(args.minutes ?? 10) * 60_000;
const RATE = Number(args.rate ?? 40);
const SEED = Number(args.seed ?? Date.now() % 1_000_000);
const SILENCE_MS = 6_000;
const PAUSE_MS = SHORT ? 12_000 : 15_000;
const STREAM = 'CHAOS';
const JWT_SECRET = 'chaos-jwt-secret-0123456789-abcdefghijklmnop';
const random = prng(SEED);
const OUTBOUND = outboundConfig(SHORT);

const failures = [];
const fail = (what) => {
  failures.push(what);
  log(`FAILURE: ${what}`);
};

const dir = mkdtempSync(join(tmpdir(), 'hookstream-chaos-'));
let cluster;
let inspector;
const gateways = [];
let subscribers = [];
const outbound = new OutboundChaos(SEED + 1, SHORT);
const injector = new FaultInjector({
  cluster: () => cluster,
  inspector: () => inspector,
  gateways,
  subscribers: () => subscribers,
  random,
  short: SHORT,
  pauseMs: PAUSE_MS,
  fail,
});
const faults = injector.faults;

async function main() {
  exitOnSignals(); // a Ctrl-C leaves no nats-server or gateway behind
  log(`chaos run: ${SHORT ? 'short' : 'full'}, ${RUN_MS / 1000} s of load at ${RATE} webhooks/s, seed ${SEED}`);
  log(`logs and stores in ${dir}`);
  if (!args['no-build']) ensureBuilt({ log: (line) => process.stderr.write(`${line}\n`) });

  await outbound.startReceivers(() => Object.fromEntries(gateways.map((g) => [`${g.name}/${g.pid}`, g.pid])));
  cluster = await NatsCluster.start(dir);
  log(`NATS cluster up: ${cluster.urls}`);
  inspector = await StreamInspector.open(cluster.urls, STREAM);
  const config = gatewayConfig({ stream: STREAM, jwtSecret: JWT_SECRET, outbound: OUTBOUND });
  for (const name of ['a', 'b']) gateways.push(await Gateway.start(name, dir, config, { NATS_URL: cluster.urls }));
  if (!(await waitUntil(async () => (await Promise.all(gateways.map((g) => g.ready()))).every(Boolean), 60_000, 200))) {
    throw new Error('the gateways did not become ready within 60 s');
  }
  await injector.waitClusterHealthy('at start');
  log(`gateways ready: ${gateways.map((g) => g.url).join(', ')}; stream leader ${await inspector.leader()}`);
  await outbound.createEndpoints(gateways[0].url);
  log(`outbound endpoints registered: ${ENDPOINTS.map((e) => `${e.name} ${e.patterns.join(' ')}`).join('; ')}`);

  const token = await new SignJWT({ subscribe: ['events.>'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('chaos')
    .setIssuedAt()
    .setExpirationTime('3h')
    .sign(new TextEncoder().encode(JWT_SECRET));
  const urls = () => gateways.map((g) => g.url);

  let producing = false;
  const producer = new Producer({ urls, rate: RATE, timeoutMs: 5_000 });
  subscribers = LAYOUT.map(([transport, patterns, first, start, joinAt], i) => {
    const Cls = transport === 'sse' ? SseSubscriber : SocketSubscriber;
    const sub = new Cls({
      name: `${transport === 'sse' ? 'sse' : 'sio'}${i}`,
      urls,
      first,
      token,
      patterns,
      start: { from: start },
      silenceMs: SILENCE_MS,
      // Silence means a dead peer only while events are being stored (a 2xx within the silence window);
      // during an ingest outage (e.g. a leader election) there is nothing to hear.
      producing: () => producing && Date.now() - producer.lastAckAt < SILENCE_MS,
    });
    sub.joinAt = joinAt;
    return sub;
  });

  for (const s of subscribers.filter((s) => s.joinAt === 0)) s.start();
  await waitUntil(() => subscribers.filter((s) => s.joinAt === 0).every((s) => s.live), 30_000);

  const t0 = Date.now();
  producing = true;
  producer.start();
  log('producing');

  const faultsDone = (async () => {
    for (const [at, kind] of faultPlan(SHORT, RUN_MS)) {
      const wait = t0 + at - Date.now();
      if (wait > 0) await sleep(wait);
      await injector.run(kind, t0);
    }
  })();
  const outagesDone = outbound.runOutages(t0, RUN_MS, log);
  const joinsDone = (async () => {
    for (const [at, f] of joinPlan(RUN_MS)) {
      const wait = t0 + at - Date.now();
      if (wait > 0) await sleep(wait);
      const late = subscribers.filter((s) => s.joinAt === f);
      log(`joining ${late.length} clients (${late.map((s) => s.name).join(' ')})`);
      for (const s of late) s.start();
    }
  })();
  const monitor = startMonitor({
    inspector,
    gateways,
    subscribers: () => subscribers,
    t0,
    file: join(dir, 'monitor.jsonl'),
  });
  const progress = setInterval(
    async () => {
      const live = subscribers.filter((s) => s.live).length;
      const ok = await outbound.counts();
      log(
        `  ${Math.round((Date.now() - t0) / 1000)} s: created ${producer.created}, acked ${producer.acknowledged}, ` +
          `in flight ${producer.inFlight}, answers ${JSON.stringify(producer.statusCounts)}, clients live ${live}/${subscribers.length}, ` +
          `outbound 2xx ${Object.entries(ok)
            .map(([name, n]) => `${name} ${n}`)
            .join(' ')}`,
      );
    },
    SHORT ? 10_000 : 30_000,
  );

  await sleep(Math.max(0, t0 + RUN_MS - Date.now()));
  await faultsDone;
  await joinsDone;
  await outagesDone;
  log('load done; waiting for the provider to get a 2xx for every delivery (60 s at most)');
  for (const gw of gateways) if (gw.paused) gw.signal('SIGCONT');
  await producer.finish(60_000);
  const producedUntil = Date.now();
  producing = false;
  clearInterval(progress);
  monitor.stop();
  const unacked = [...producer.deliveries.values()].filter((r) => r.ackedAt === undefined);
  if (unacked.length)
    fail(`${unacked.length} webhooks never got a 2xx within 60 s after the load (e.g. ${unacked[0].id})`);

  await injector.waitClusterHealthy('at the end');
  const stored = await inspector.readAll();
  const info = await inspector.info();
  if (stored.length !== info.state.messages)
    fail(`read ${stored.length} messages, the stream holds ${info.state.messages}`);

  // Clients: wait until each one has as many deliveries as it should (or 60 s), then stop them.
  const want = new Map(
    subscribers.map((s) => [
      s,
      judge({ ...s, seqs: [], ids: [], gaps: [], startSeq: () => s.startSeq() }, stored).expected,
    ]),
  );
  // Meanwhile the outbound receivers drain: each waits for a 2xx for every matching stored event.
  const [, drainedAt] = await Promise.all([
    waitUntil(() => subscribers.every((s) => s.live && s.seqs.length >= want.get(s)), 60_000, 250),
    outbound.drain(stored, SHORT ? 60_000 : 120_000),
  ]);
  await Promise.all(subscribers.map((s) => s.stop()));

  // ---- invariants, recovery times, report ---------------------------------------------------------------
  const ingest = checkIngest(producer, stored, fail);
  const clients = checkClients(subscribers, stored, fail);
  const outboundResult = await checkOutbound({ outbound, gateways, dir, stored, faults, drainedAt, fail });
  const recovery = recoveryTimes({ producer, subscribers, faults, t0, producedUntil, silenceMs: SILENCE_MS });
  return report({
    run: { short: SHORT, runMs: RUN_MS, rate: RATE, seed: SEED, dir, producedUntil },
    producer,
    subscribers,
    faults,
    stored,
    ingest,
    clients,
    outbound: { ...outboundResult, drainedAt },
    recovery,
    answers: answerTimes(producer, faults, t0),
    tapStall: liveTapStalls(gateways, monitor.samples),
    failures,
  });
}

let exitCode = 1;
try {
  const summary = await main();
  exitCode = failures.length || summary.lost || summary.duplicated ? 1 : 0;
} catch (err) {
  fail(`the run itself failed: ${err?.stack ?? err}`);
}
try {
  await inspector?.close();
  await outbound.close();
  await Promise.all(gateways.map((g) => g.kill('SIGTERM')));
  await cluster?.stop();
} catch {
  // the exit handler SIGKILLs whatever is left
}
if (failures.length === 0 && exitCode === 0) {
  console.log('\nchaos: PASS (nothing lost, nothing twice, every client in order)');
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
} else {
  console.log(`\nchaos: FAIL (${failures.length} failure(s)); logs and stores kept in ${dir}`);
  exitCode = 1;
}
process.exit(exitCode);
