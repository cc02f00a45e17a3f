// Publishes bench events in its own process, paced on a fixed schedule (a late tick catches up, so the
// offered rate holds even when the machine is busy). Each event carries its publish time `t` (wall-clock ms,
// sub-ms) and a counter `n` in its data, so clients measure end-to-end latency.
// Modes: `nats` (js.publish straight into the stream: the fan-out scenarios on JetStream), `v1` (POST
// /v1/events with the API key: the embedded store's only way in), `webhook` (Standard-Webhooks-signed POST
// /webhooks/bench: end-to-end). Subjects: `events.bench.tick`, or with `topics` T > 0 event n goes to
// `events.bench.t<n mod T>.tick`; the seqs stored per topic are kept so clients can be checked exactly.
import { Agent } from 'node:http';
import { randomUUID } from 'node:crypto';
import { serve } from '../lib/workers.mjs';
import { Histogram, nowMs, postJson, signStandardWebhook, sleep, webhookBody } from '../lib/util.mjs';

const SUBJECT = 'events.bench.tick';
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
/** POST `path` on the gateway at `url` with the worker's keep-alive agent. */
const post = (url, path, headers, body) => postJson(agent, new URL(path, url), headers, body);
let js = null;
let nc = null;

const state = {
  topics: 0,
  seqsByTopic: null,
  /** Every stored seq of this run (a broadcast phase's clients are checked against it). */
  seqs: [],
  sent: 0,
  ok: 0,
  failed: 0,
  maxSeq: 0,
  statuses: {},
  postHist: new Histogram(),
  running: false,
  stopRequested: false,
  inFlight: 0,
};

function resetState(topics = 0) {
  Object.assign(state, {
    topics,
    seqsByTopic: topics > 0 ? Array.from({ length: topics }, () => []) : null,
    seqs: [],
    sent: 0,
    ok: 0,
    failed: 0,
    maxSeq: 0,
    statuses: {},
    postHist: new Histogram(),
    inFlight: 0,
  });
}

const topicOf = (n) => (state.topics > 0 ? n % state.topics : -1);
const subjectOf = (n) => (state.topics > 0 ? `events.bench.t${topicOf(n)}.tick` : SUBJECT);
const typeOf = (n) => (state.topics > 0 ? `t${topicOf(n)}.tick` : 'bench.tick');

function envelopeFor(n, t, size) {
  return JSON.stringify({
    specversion: '1.0',
    id: `bench-${n}`,
    source: '/bench',
    type: 'bench.tick',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data: JSON.parse(webhookBody(n, t, size)),
  });
}

function record(status, seq, n) {
  state.statuses[status] = (state.statuses[status] ?? 0) + 1;
  if (status >= 200 && status < 300) {
    state.ok++;
    if (seq > state.maxSeq) state.maxSeq = seq;
    state.seqs.push(seq);
    if (state.seqsByTopic && n !== undefined) state.seqsByTopic[topicOf(n)].push(seq);
  } else state.failed++;
}

/** Sends event number n now; resolves when acknowledged. */
async function sendOne(mode, url, n, size) {
  const t = nowMs();
  state.sent++;
  state.inFlight++;
  try {
    if (mode === 'nats') {
      try {
        const ack = await js.publish(subjectOf(n), envelopeFor(n, t, size));
        record(200, ack.seq, n);
      } catch {
        record(0, 0);
      }
    } else if (mode === 'v1') {
      const body = JSON.stringify({
        subject: subjectOf(n),
        id: `bench-${n}-${randomUUID()}`,
        data: JSON.parse(webhookBody(n, t, size)),
      });
      const r = await post(
        url,
        '/v1/events',
        { 'content-type': 'application/json', authorization: `Bearer ${process.env.BENCH_API_KEY}` },
        body,
      );
      record(r.status, r.json?.results?.[0]?.seq ?? 0, n);
    } else {
      const id = `msg_${randomUUID()}`;
      const body = webhookBody(n, t, size, typeOf(n));
      const r = await post(url, '/webhooks/bench', signStandardWebhook(id, body), body);
      state.postHist.add(nowMs() - t);
      record(r.status, r.json?.seq ?? 0, n);
    }
  } finally {
    state.inFlight--;
  }
}

function snapshot(withSeqs = false) {
  return {
    ...(withSeqs ? { seqs: [...state.seqs].sort((x, y) => x - y) } : {}),
    ...(withSeqs && state.seqsByTopic
      ? {
          seqsByTopic: state.seqsByTopic.map((a) => [...a].sort((x, y) => x - y)),
          lastByTopic: state.seqsByTopic.map((a) => (a.length ? Math.max(...a) : 0)),
        }
      : {}),
    sent: state.sent,
    ok: state.ok,
    failed: state.failed,
    maxSeq: state.maxSeq,
    statuses: state.statuses,
    inFlight: state.inFlight,
    running: state.running,
    post: state.postHist.summary(),
    postHist: state.postHist.toJSON(),
  };
}

serve({
  async connect({ natsUrl }) {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstream } = await import('@nats-io/jetstream');
    nc = await connect({ servers: natsUrl });
    js = jetstream(nc);
    return null;
  },

  /**
   * Publishes `count` events at `rate`/s (or for `durationMs`), without waiting for acks between sends.
   * Returns at once; `status` reports progress, `wait` resolves when every publish was acknowledged.
   */
  start({ mode, url, rate, count = Infinity, durationMs = Infinity, size = 512, startN = 0, topics = 0 }) {
    resetState(topics);
    state.running = true;
    state.stopRequested = false;
    const started = nowMs();
    let n = 0;
    const pending = new Set();
    state.done = (async () => {
      while (!state.stopRequested && n < count && nowMs() - started < durationMs) {
        const due = Math.min(count, Math.floor(((nowMs() - started) * rate) / 1000) + 1);
        while (n < due) {
          const p = sendOne(mode, url, startN + n++, size);
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
        await sleep(1);
      }
      await Promise.all(pending);
      state.running = false;
    })();
    return { started };
  },

  stopPublishing() {
    state.stopRequested = true;
    return null;
  },

  async wait() {
    await state.done;
    return snapshot(true);
  },

  status() {
    return snapshot();
  },

  /** Stores `count` events as fast as the store takes them (nats: a window in flight; v1: batches). */
  async preload({ mode, url, count, size = 512, window = 256, batch = 500 }) {
    resetState();
    const t0 = nowMs();
    if (mode === 'nats') {
      let n = 0;
      const inflight = new Set();
      while (n < count) {
        while (inflight.size < window && n < count) {
          const p = sendOne('nats', url, n++, size);
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
        await Promise.race(inflight);
      }
      await Promise.all(inflight);
    } else {
      for (let i = 0; i < count; i += batch) {
        const items = [];
        const t = nowMs();
        for (let k = i; k < Math.min(count, i + batch); k++) {
          items.push({ subject: SUBJECT, id: `pre-${k}-${randomUUID()}`, data: JSON.parse(webhookBody(k, t, size)) });
        }
        state.sent += items.length;
        const r = await post(
          url,
          '/v1/events',
          { 'content-type': 'application/json', authorization: `Bearer ${process.env.BENCH_API_KEY}` },
          JSON.stringify(items),
        );
        const results = r.json?.results ?? [];
        for (const res of results) record(r.status, res.seq);
        if (results.length < items.length) state.failed += items.length - results.length;
      }
    }
    return { ...snapshot(), elapsedMs: nowMs() - t0 };
  },

  async exit() {
    await nc?.close().catch(() => undefined);
  },
});
