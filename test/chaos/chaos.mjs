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
 */
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { ensureBuilt } from '../lib/build.mjs';
import { NatsCluster } from '../lib/nats-server.mjs';
import { exitOnSignals, sleep, waitUntil } from '../lib/procs.mjs';
import { Gateway } from './lib/gateway.mjs';
import { ackFailuresIn, judgeEndpoint } from './lib/outbound-judge.mjs';
import { ENDPOINTS, outboundConfig, OutboundChaos } from './lib/outbound.mjs';
import { Producer, sourcesConfig } from './lib/producer.mjs';
import { StreamInspector } from './lib/stream.mjs';
import { SocketSubscriber, SseSubscriber, judge } from './lib/subscribers.mjs';
import { log, parseArgs, prng, seconds, table } from './lib/report.mjs';

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

const gatewayConfig = {
  stream: { name: STREAM, replicas: 3, maxAge: '1d', duplicateWindow: '2m' },
  idempotency: { ttl: '1h' },
  sources: sourcesConfig(),
  auth: { jwt: { secret: JWT_SECRET }, anonymous: { subscribe: [] }, apiKeys: [OUTBOUND.apiKey] },
  delivery: OUTBOUND.delivery,
  ingest: { publishTimeout: '3s' },
  // A small ring, so that resumes after a pause or restart read the stream, not only memory.
  limits: { ringEvents: 256 },
};

/** Subscriber layout: [transport, patterns, gateway index, start, join at (fraction of the run)]. */
const LAYOUT = [
  ['socket', ['events.>'], 0, 'earliest', 0],
  ['socket', ['events.>'], 1, 'earliest', 0],
  ['socket', ['events.acme.>'], 0, 'latest', 0],
  ['socket', ['events.acme.>'], 1, 'earliest', 0],
  ['socket', ['events.beta.>'], 0, 'earliest', 0],
  ['socket', ['events.beta.>'], 1, 'latest', 0],
  ['socket', ['events.*.invoice.paid'], 0, 'earliest', 0],
  ['socket', ['events.*.invoice.paid'], 1, 'earliest', 0],
  ['socket', ['events.acme.order.*'], 0, 'earliest', 0],
  ['socket', ['events.acme.order.*'], 1, 'latest', 0],
  ['socket', ['events.acme.order.created', 'events.beta.user.*'], 0, 'earliest', 0],
  ['socket', ['events.acme.order.created', 'events.beta.user.*'], 1, 'earliest', 0],
  ['socket', ['events.beta.ping', 'events.acme.user.signup'], 0, 'earliest', 0],
  ['socket', ['events.acme.*.paid'], 1, 'earliest', 0],
  ['socket', ['events.>'], 0, 'earliest', 0.3],
  ['socket', ['events.acme.>'], 1, 'earliest', 0.3],
  ['socket', ['events.beta.user.login'], 0, 'earliest', 0.3],
  ['socket', ['events.>'], 1, 'latest', 0.55],
  ['socket', ['events.*.invoice.*'], 0, 'latest', 0.55],
  ['socket', ['events.acme.order.paid', 'events.beta.>'], 1, 'earliest', 0.55],
  ['sse', ['events.>'], 1, 'earliest', 0],
  ['sse', ['events.acme.>'], 0, 'earliest', 0],
  ['sse', ['events.beta.>', 'events.acme.invoice.paid'], 1, 'latest', 0],
  ['sse', ['events.*.user.*'], 0, 'earliest', 0.3],
  ['sse', ['events.>'], 1, 'latest', 0.55],
];

/** The fault plan: [at ms, kind]. Short: one of each. Full: the four kinds in rotation, every 15 s. */
function faultPlan() {
  if (SHORT) {
    return [
      [6_000, 'nats-kill'],
      [18_000, 'gateway-kill'],
      [27_000, 'gateway-pause'],
      [45_000, 'leader-restart'],
    ];
  }
  const kinds = ['nats-kill', 'gateway-kill', 'gateway-pause', 'leader-restart'];
  const plan = [];
  for (let at = 8_000, i = 0; at < RUN_MS - 20_000; at += 15_000, i++) plan.push([at, kinds[i % kinds.length]]);
  return plan;
}

// ---------------------------------------------------------------------------------------------------------

const faults = [];
let faultCount = 0;
const samples = [];
let subscribers = [];
const outbound = new OutboundChaos(SEED + 1, SHORT);

/** The gateway serving the most live clients (clients move away from a faulty one; hit where they are). */
function busiestGateway(n) {
  const count = (gw) => subscribers.filter((s) => s.live && s.sessions.at(-1)?.url === gw.url).length;
  const counts = gateways.map(count);
  const most = Math.max(...counts);
  const busiest = gateways.filter((_, i) => counts[i] === most);
  return busiest[n % busiest.length];
}

async function waitClusterHealthy(what) {
  const ok = await waitUntil(
    async () => {
      const nodes = await Promise.all(cluster.nodes.map((n) => n.healthy()));
      return nodes.every(Boolean) && (await inspector.replicasCurrent(3));
    },
    90_000,
    250,
  );
  if (!ok) fail(`${what}: the stream's replicas were not all current within 90 s (a replica that never recovers?)`);
  return ok;
}

async function runFault(kind, t0) {
  const n = faultCount++;
  const rec = { kind, detail: '' };
  faults.push(rec);
  // The fault's time is when it is injected (after any wait for the cluster to be whole again).
  const inject = (detail) => {
    rec.detail = detail;
    rec.at = Date.now();
    rec.atRun = rec.at - t0;
    log(`fault ${n}: ${detail}`);
  };
  switch (kind) {
    case 'nats-kill': {
      await waitClusterHealthy('before a NATS node kill');
      const leader = await inspector.leader();
      // A follower, preferably one holding consumers (the gateways' live taps are R1 consumers on one node):
      // its death must not stall the live feed of a gateway connected elsewhere.
      const hosts = await inspector.consumerHosts().catch(() => ({}));
      const others = cluster.nodes.filter((x) => x.name !== leader);
      const most = Math.max(...others.map((x) => hosts[x.name] ?? 0));
      const candidates = others.filter((x) => (hosts[x.name] ?? 0) === most);
      const node = candidates[Math.floor(random() * candidates.length)];
      inject(`kill -9 ${node.name} (leader ${leader}, holding ${most} consumers), restart after 5 s`);
      await node.kill('SIGKILL');
      await sleep(5_000);
      await node.restart();
      break;
    }
    case 'leader-restart': {
      await waitClusterHealthy('before a leader restart');
      const leader = await inspector.leader();
      const node = cluster.node(leader);
      // Full runs alternate a crash and a graceful stop of the leader.
      const signal = SHORT || Math.floor(n / 4) % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
      inject(`${signal} the stream leader ${leader}, restart after 3 s`);
      await node.kill(signal);
      await sleep(3_000);
      await node.restart();
      const newLeader = await waitUntil(async () => !!(await inspector.leader()), 30_000, 100);
      rec.detail += newLeader ? `; new leader ${await inspector.leader()}` : '; no leader within 30 s';
      break;
    }
    case 'gateway-kill': {
      const gw = busiestGateway(n);
      rec.process = `${gw.name}/${gw.pid}`;
      inject(`kill -9 gateway ${gw.name} (the busiest), restart at once`);
      await gw.kill('SIGKILL');
      await gw.start();
      break;
    }
    case 'gateway-pause': {
      const gw = busiestGateway(n);
      rec.process = `${gw.name}/${gw.pid}`;
      inject(`SIGSTOP gateway ${gw.name} (the busiest) for ${PAUSE_MS / 1000} s, then SIGCONT`);
      rec.url = gw.url;
      gw.signal('SIGSTOP');
      await sleep(PAUSE_MS);
      gw.signal('SIGCONT');
      break;
    }
  }
  rec.doneAt = Date.now();
}

/**
 * Longest time each gateway's live tap stayed behind: from the first sample where its live sequence was
 * below the stream's head of a sample at least 2 s older, to the first sample where it had caught up with
 * it. Samples of a gateway that is down or paused end a run (that is the fault itself, not a stall).
 */
function liveTapStalls() {
  const out = {};
  for (const gw of gateways) {
    let worst = { ms: 0 };
    let since = null;
    for (let i = 0; i < samples.length; i++) {
      const row = samples[i];
      const m = row[gw.name];
      const seq = typeof m === 'object' ? m.hookstream_live_sequence : undefined;
      const older = samples.slice(0, i).findLast((r) => r.t <= row.t - 2_000 && typeof r.lastSeq === 'number');
      if (seq === undefined || !older) {
        since = null;
        continue;
      }
      if (seq < older.lastSeq) {
        since ??= older.t;
        if (row.t - since > worst.ms) worst = { ms: row.t - since, from: since, to: row.t };
      } else since = null;
    }
    out[gw.name] = worst;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

async function main() {
  exitOnSignals(); // a Ctrl-C leaves no nats-server or gateway behind
  log(`chaos run: ${SHORT ? 'short' : 'full'}, ${RUN_MS / 1000} s of load at ${RATE} webhooks/s, seed ${SEED}`);
  log(`logs and stores in ${dir}`);
  if (!args['no-build']) ensureBuilt({ log: (line) => process.stderr.write(`${line}\n`) });

  await outbound.startReceivers(() => Object.fromEntries(gateways.map((g) => [`${g.name}/${g.pid}`, g.pid])));
  cluster = await NatsCluster.start(dir);
  log(`NATS cluster up: ${cluster.urls}`);
  inspector = await StreamInspector.open(cluster.urls, STREAM);
  for (const name of ['a', 'b'])
    gateways.push(await Gateway.start(name, dir, gatewayConfig, { NATS_URL: cluster.urls }));
  if (!(await waitUntil(async () => (await Promise.all(gateways.map((g) => g.ready()))).every(Boolean), 60_000, 200))) {
    throw new Error('the gateways did not become ready within 60 s');
  }
  await waitClusterHealthy('at start');
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

  const plan = faultPlan();
  const joins = [...new Set(LAYOUT.map((l) => l[4]).filter((f) => f > 0))].map((f) => [f * RUN_MS, f]);
  const faultsDone = (async () => {
    for (const [at, kind] of plan) {
      const wait = t0 + at - Date.now();
      if (wait > 0) await sleep(wait);
      await runFault(kind, t0);
    }
  })();
  const outagesDone = outbound.runOutages(t0, RUN_MS, log);
  const joinsDone = (async () => {
    for (const [at, f] of joins) {
      const wait = t0 + at - Date.now();
      if (wait > 0) await sleep(wait);
      const late = subscribers.filter((s) => s.joinAt === f);
      log(`joining ${late.length} clients (${late.map((s) => s.name).join(' ')})`);
      for (const s of late) s.start();
    }
  })();
  // A timeline: the stream's head, and each gateway's live-tap position, clients and deliveries, every second.
  const monitorLog = createWriteStream(join(dir, 'monitor.jsonl'));
  let sampling = false;
  const monitor = setInterval(async () => {
    if (sampling) return;
    sampling = true;
    const row = { t: Date.now() - t0 };
    try {
      row.lastSeq = (await inspector.info()).state.last_seq;
    } catch {
      row.lastSeq = null;
    }
    for (const gw of gateways) {
      if (!gw.running || gw.paused) {
        row[gw.name] = gw.paused ? 'paused' : 'down';
        continue;
      }
      try {
        row[gw.name] = await gw.metrics([
          'hookstream_live_sequence',
          'hookstream_connected_clients',
          'hookstream_deliveries_total',
          'hookstream_outbound_pending',
        ]);
      } catch (err) {
        row[gw.name] = String(err?.message ?? err);
      }
    }
    row.at = Date.now() - t0;
    row.live = subscribers
      .filter((s) => s.live)
      .map((s) => `${s.name}@${gateways.find((g) => g.url === s.sessions.at(-1)?.url)?.name}`);
    samples.push(row);
    monitorLog.write(`${JSON.stringify(row)}\n`);
    sampling = false;
  }, 1_000);
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
  clearInterval(monitor);
  const unacked = [...producer.deliveries.values()].filter((r) => r.ackedAt === undefined);
  if (unacked.length)
    fail(`${unacked.length} webhooks never got a 2xx within 60 s after the load (e.g. ${unacked[0].id})`);

  await waitClusterHealthy('at the end');
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

  // ---- invariants --------------------------------------------------------------------------------------
  const byMsgId = new Map();
  for (const m of stored) byMsgId.set(m.msgId, [...(byMsgId.get(m.msgId) ?? []), m.seq]);
  let ackedMissing = 0;
  let storedTwice = 0;
  let seqMismatch = 0;
  let storedUnacked = 0;
  const acked = [...producer.deliveries.values()].filter((r) => r.ackedAt !== undefined);
  for (const r of acked) {
    const seqs = byMsgId.get(`${r.source}:${r.id}`) ?? [];
    if (seqs.length === 0) {
      ackedMissing++;
      if (ackedMissing <= 5) fail(`2xx (${r.status} ${r.answer}) for ${r.source}:${r.id}, which is not in the stream`);
    }
    if (r.seq !== undefined && seqs.length && !seqs.includes(r.seq)) {
      seqMismatch++;
      if (seqMismatch <= 5) fail(`${r.id}: the 2xx named seq ${r.seq}, the stream has it at ${seqs.join(',')}`);
    }
  }
  for (const [msgId, seqs] of byMsgId) {
    if (seqs.length > 1) {
      storedTwice += seqs.length - 1;
      if (storedTwice <= 5) fail(`${msgId} is stored ${seqs.length} times (seqs ${seqs.join(',')})`);
    }
    const id = msgId?.replace(/^[^:]+:/, '');
    if (producer.deliveries.get(id)?.ackedAt === undefined) storedUnacked++;
  }
  if (ackedMissing > 5) fail(`... ${ackedMissing} acknowledged webhooks missing from the stream in all`);
  if (storedTwice > 5) fail(`... ${storedTwice} extra copies in the stream in all`);

  const verdicts = subscribers.map((s) => ({ s, v: judge(s, stored) }));
  let clientLost = 0;
  let clientDup = 0;
  let delivered = 0;
  for (const { s, v } of verdicts) {
    delivered += v.delivered;
    clientLost += v.lost;
    clientDup += v.duplicated;
    if (s.startCursor === undefined) fail(`${s.name} never got a subscription`);
    if (v.lost) fail(`${s.name} (${s.patterns}) missed ${v.lost} of ${v.expected} events, e.g. seqs ${v.lostSeqs}`);
    if (v.duplicated) fail(`${s.name} got ${v.duplicated} events twice, e.g. seqs ${v.dupSeqs}`);
    if (v.outOfOrder) fail(`${s.name}: ${v.outOfOrder} deliveries out of stream order`);
    if (v.wrongEvent || v.unexpected || v.subjectMismatches) {
      fail(
        `${s.name}: ${v.wrongEvent} wrong events, ${v.unexpected} unexpected seqs, ${v.subjectMismatches} outside its patterns`,
      );
    }
    if (v.gaps) fail(`${s.name} got ${v.gaps} gap notice(s), though retention removed nothing`);
  }

  // Outbound: every endpoint's receiver against the stream (lib/outbound.mjs says what is checked).
  const endpointStates = await outbound.states(gateways[0].url);
  const records = await outbound.collect();
  for (const [name, rx] of Object.entries(records)) {
    writeFileSync(join(dir, `outbound-${name}.jsonl`), rx.requests.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  const ackFailures = gateways.flatMap((g) =>
    ackFailuresIn(g.name, readFileSync(join(dir, `gateway-${g.name}.log`), 'utf8')),
  );
  const outboundVerdicts = ENDPOINTS.map((ep) => {
    const id = outbound.endpoints.get(ep.name);
    const unacked = (seq, attempt) => ackFailures.some((f) => f.queue === id && f.seq === seq && f.attempt === attempt);
    return { ep, v: judgeEndpoint(ep, records[ep.name], stored, faults, unacked) };
  });
  for (const { ep, v } of outboundVerdicts)
    if (v.twice) await outbound.explainTwice(gateways[0].url, ep.name, v, ackFailures);
  if (drainedAt === null) fail('outbound: not every endpoint had every matching event within the drain period');
  for (const { ep, v } of outboundVerdicts) {
    const state = endpointStates[ep.name];
    if (v.lost)
      fail(
        `endpoint ${ep.name}: ${v.lost} of ${v.expected} matching events never got a 2xx (e.g. ${v.lostIds.join(', ')}); ` +
          `gateway says pending ${state?.pending}, dead ${state?.dead}`,
      );
    if (v.unverified) fail(`endpoint ${ep.name}: ${v.unverified} requests do not verify with standardwebhooks`);
    if (v.wrong)
      fail(
        `endpoint ${ep.name}: ${v.wrong} requests with a wrong id, cursor or subject, e.g. ${JSON.stringify(v.wrongExamples)}`,
      );
    if (v.twice)
      fail(
        `endpoint ${ep.name}: ${v.twice} webhook-ids got a 2xx twice though no fault could have lost the first and the gateway logged it delivered, e.g. ${JSON.stringify(v.twiceList.slice(0, 5))}`,
      );
    if (v.attemptRegressions)
      fail(
        `endpoint ${ep.name}: ${v.attemptRegressions} requests did not raise the attempt number, e.g. ${JSON.stringify(v.attemptExamples)}`,
      );
    if (v.orderViolations)
      fail(
        `endpoint ${ep.name} (fifo): ${v.orderViolations} order violations, e.g. ${JSON.stringify(v.orderExamples)}`,
      );
  }

  // ---- recovery times ----------------------------------------------------------------------------------
  const faultBefore = (t) => faults.filter((f) => f.at <= t).at(-1);
  const ackTimes = producer.acks.map((a) => a.at).sort((x, y) => x - y);
  // Events were flowing at t if some webhook was acknowledged in the second before t.
  const flowing = (t) => {
    let lo = 0;
    let hi = ackTimes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ackTimes[mid] <= t - 1_000) lo = mid + 1;
      else hi = mid;
    }
    return lo < ackTimes.length && ackTimes[lo] <= t;
  };
  const flowingMs = (from, to) => {
    let ms = 0;
    for (let t = from; t < to; t += 100) if (flowing(t)) ms += Math.min(100, to - t);
    return ms;
  };
  const outages = [];
  for (const s of subscribers) {
    for (const o of s.outages) {
      if (o.why === 'start' || o.why === 'stop' || o.from < t0 || o.from > producedUntil) continue;
      // Attributed to the last fault before the client noticed (a frozen peer is noticed after the silence).
      const noticed = o.why === 'silence' ? o.from + SILENCE_MS : o.from;
      outages.push({
        client: s.name,
        // Not live while events were flowing: an ingest outage inside it (an election) is not counted.
        ms: flowingMs(o.from, o.to),
        rawMs: o.to - o.from,
        why: o.why,
        from: o.from,
        noticed,
        fault: faultBefore(noticed),
      });
    }
  }
  const maxOutage = outages.reduce((m, o) => (o.ms > m.ms ? o : m), { ms: 0 });
  let longestIngestStall = 0;
  for (let i = 1; i < ackTimes.length; i++)
    longestIngestStall = Math.max(longestIngestStall, ackTimes[i] - ackTimes[i - 1]);
  for (const f of faults) {
    const first = producer.acks.filter((a) => a.startedAt >= f.at).reduce((m, a) => Math.min(m, a.at), Infinity);
    f.firstIngestMs = first === Infinity ? undefined : first - f.at;
    const mine = outages.filter((o) => o.fault === f);
    f.clientsAffected = new Set(mine.map((o) => o.client)).size;
    f.reasons = {};
    for (const o of mine) f.reasons[o.why] = (f.reasons[o.why] ?? 0) + 1;
    f.maxClientOutageMs = mine.reduce((m, o) => Math.max(m, o.ms), 0);
  }
  const tapStall = liveTapStalls();
  const maxFirstIngest = faults.reduce((m, f) => Math.max(m, f.firstIngestMs ?? Infinity), 0);

  // ---- report ------------------------------------------------------------------------------------------
  const attempts = producer.attempts;
  // How long answered attempts took (a 503 must come within a few seconds, never a hang); attempts sent to a
  // gateway while it was frozen are left out (their wait is the SIGSTOP, not the gateway).
  const pauses = faults.filter((f) => f.kind === 'gateway-pause');
  const frozen = (a) => pauses.some((f) => f.url === a.url && a.startedAt < f.doneAt && a.startedAt + a.ms > f.at);
  const answeredMs = { ok: [], unavailable: [] };
  for (const r of producer.deliveries.values()) {
    for (const a of r.attempts) {
      if (typeof a.status !== 'number' || frozen(a)) continue;
      if (a.status < 300) answeredMs.ok.push(a.ms);
      else if (a.status === 503) answeredMs.unavailable.push(a.ms);
    }
  }
  const slowest = [];
  for (const r of producer.deliveries.values()) {
    for (const a of r.attempts) {
      if (typeof a.status === 'number' && !frozen(a)) slowest.push({ ...a, at: a.startedAt - t0, id: r.id });
    }
  }
  slowest.sort((x, y) => y.ms - x.ms);
  slowest.length = Math.min(slowest.length, 20);
  const pct = (list, q) => [...list].sort((x, y) => x - y)[Math.min(list.length - 1, Math.floor(list.length * q))] ?? 0;
  const answerP99 = { ok: pct(answeredMs.ok, 0.99), unavailable: pct(answeredMs.unavailable, 0.99) };
  const answerMax = { ok: pct(answeredMs.ok, 1), unavailable: pct(answeredMs.unavailable, 1) };
  console.log(`\nFaults (${faults.length}):`);
  console.log(
    table(
      ['#', 'at', 'fault', 'first 2xx after', 'clients resumed', 'why', 'longest client outage'],
      faults.map((f, i) => [
        i,
        seconds(f.atRun),
        f.detail,
        seconds(f.firstIngestMs),
        f.clientsAffected,
        Object.entries(f.reasons)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
        seconds(f.maxClientOutageMs),
      ]),
    ),
  );
  console.log('\nClients:');
  console.log(
    table(
      ['client', 'patterns', 'start', 'sessions', 'expected', 'delivered', 'lost', 'dup', 'gaps'],
      verdicts.map(({ s, v }) => [
        s.name,
        s.patterns.join(' '),
        s.startSeq(),
        s.sessions.length,
        v.expected,
        v.delivered,
        v.lost,
        v.duplicated,
        v.gaps,
      ]),
    ),
  );
  console.log('\nOutbound endpoints:');
  console.log(
    table(
      [
        'endpoint',
        'patterns',
        'receiver down',
        'expected',
        'delivered',
        'lost',
        'requests',
        '2xx twice (excused)',
        'unverified',
        'attempt regressions (excused)',
        'order violations',
        'dead',
      ],
      outboundVerdicts.map(({ ep, v }) => {
        const rx = records[ep.name];
        return [
          `${ep.name}${ep.ordering ? ` (${ep.ordering})` : ''}`,
          ep.patterns.join(' '),
          seconds(rx.downs.reduce((ms, d) => ms + ((d.to ?? Date.now()) - d.from), 0)),
          v.expected,
          v.delivered,
          v.lost,
          v.requests,
          `${v.twice} (${v.twiceExcused + v.twiceLate + v.twiceUnacked})`,
          v.unverified,
          `${v.attemptRegressions} (${v.attemptRegressionsExcused})`,
          ep.ordering === 'fifo' ? v.orderViolations : '—',
          endpointStates[ep.name]?.dead ?? '?',
        ];
      }),
    ),
  );
  console.log(
    `Outbound drained ${drainedAt === null ? 'NOT within the drain period' : `${seconds(drainedAt - producedUntil)} after the load ended`}; ` +
      `excused (in brackets): a 2xx twice where a fault could have lost the first or the gateway logged the ` +
      `first as failed (answer after its timeout) or logged a failed ack just after it: ` +
      `${outboundVerdicts.map(({ ep, v }) => `${ep.name} ${v.twiceLate}+${v.twiceUnacked}`).join(', ')}; ` +
      `an attempt number going back around a NATS node kill; by fault: ` +
      `${JSON.stringify(Object.fromEntries(outboundVerdicts.map(({ ep, v }) => [ep.name, v.excusedBy])))}.`,
  );
  const summary = {
    mode: SHORT ? 'short' : 'full',
    seconds: RUN_MS / 1000,
    rate: RATE,
    seed: SEED,
    faults: faults.length,
    webhooks: producer.created,
    attempts,
    answers: producer.statusCounts,
    acknowledged: acked.length,
    stored: stored.length,
    storedUnacked,
    delivered,
    lost: ackedMissing + clientLost,
    duplicated: storedTwice + clientDup,
    reconnects: subscribers.reduce((n, s) => n + s.sessions.length - 1, 0),
    maxClientOutageMs: maxOutage.ms,
    maxClientOutage: maxOutage,
    maxFirstIngestAfterFaultMs: maxFirstIngest,
    longestIngestStallMs: longestIngestStall,
    answerP99Ms: answerP99,
    slowestAnswers: slowest,
    answerMaxMs: answerMax,
    liveTapStalls: tapStall,
    outbound: {
      drainedAfterLoadMs: drainedAt === null ? null : drainedAt - producedUntil,
      endpoints: Object.fromEntries(
        outboundVerdicts.map(({ ep, v }) => [ep.name, { ...v, state: endpointStates[ep.name] }]),
      ),
    },
    failures,
  };
  console.log('\nSummary:');
  console.log(
    table(
      [
        'acknowledged',
        'stored',
        'delivered',
        'lost',
        'duplicated',
        'client resumes',
        'max client outage*',
        'max fault→2xx',
        'longest 2xx gap',
        'longest live-tap stall',
      ],
      [
        [
          summary.acknowledged,
          summary.stored,
          summary.delivered,
          summary.lost,
          summary.duplicated,
          summary.reconnects,
          `${seconds(maxOutage.ms)}${maxOutage.client ? ` (${maxOutage.client}, ${maxOutage.why})` : ''}`,
          seconds(maxFirstIngest),
          seconds(longestIngestStall),
          Object.entries(tapStall)
            .map(([g, v]) => `${g} ${seconds(v.ms)}`)
            .join(', '),
        ],
      ],
    ),
  );
  console.log(
    '* longest time a client was not live while webhooks were being acknowledged (from the last thing it heard)',
  );
  console.log(
    `\n${producer.created} webhooks in ${attempts} attempts; answers ${JSON.stringify(producer.statusCounts)}; ` +
      `${storedUnacked} stored but never answered 2xx.\nAnswer times (gateway not frozen): 2xx p99 ${answerP99.ok} ms, ` +
      `max ${answerMax.ok} ms; 503 p99 ${answerP99.unavailable} ms, max ${answerMax.unavailable} ms.`,
  );
  writeFileSync(
    join(dir, 'summary.json'),
    JSON.stringify(
      {
        summary,
        faults,
        outages: outages.map(({ fault, ...o }) => ({ ...o, fault: faults.indexOf(fault) })),
        sessions: Object.fromEntries(subscribers.map((s) => [s.name, s.sessions])),
      },
      null,
      2,
    ),
  );
  return summary;
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
