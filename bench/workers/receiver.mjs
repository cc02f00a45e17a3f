// A fast webhook receiver in its own process: node:http on 127.0.0.1 with keep-alive, answers 204 at once,
// verifies a sample of signatures with the `standardwebhooks` library, and records every `webhook-id` per
// endpoint path so the orchestrator counts lost and duplicate deliveries exactly. `down` closes the listener
// and every open socket (a receiver that went away); `up` listens again on the same port.
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { serve } from '../lib/workers.mjs';
import { Histogram, nowMs } from '../lib/util.mjs';

const SAMPLE_EVERY = 50; // verify one delivery in 50 per endpoint: the check, without making the receiver slow
const secrets = new Map(); // path → Webhook
const seen = new Map(); // path → Set of webhook-id
const topicOfPath = new Map(); // path → the topic its endpoint subscribes to (event n goes to topic n mod T)
let topics = 1;
const sockets = new Set();
const state = {
  received: 0,
  dups: 0,
  verified: 0,
  badSignatures: 0,
  unknownPath: 0,
  hist: new Histogram(),
  lastAt: 0,
  lastNewAt: 0,
};
let server = null;
let port = 0;

function onRequest(req, res) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const at = nowMs();
    res.writeHead(204).end();
    const path = req.url;
    const ids = seen.get(path);
    if (!ids) {
      state.unknownPath++;
      return;
    }
    // `bench-<n>`; events stored through /v1/events carry a unique suffix (`bench-<n>-<uuid>`): count by <n>.
    const raw = String(req.headers['webhook-id']);
    const id = /^bench-\d+/.exec(raw)?.[0] ?? raw;
    state.received++;
    state.lastAt = at;
    if (ids.has(id)) {
      state.dups++;
      return;
    }
    ids.add(id);
    state.lastNewAt = at; // a late duplicate must not stretch the drain time
    const body = Buffer.concat(chunks).toString('utf8');
    try {
      const t = JSON.parse(body).data?.t;
      if (typeof t === 'number') state.hist.add(at - t);
    } catch {
      state.badSignatures++; // not even JSON: counted as a bad delivery
    }
    if (ids.size % SAMPLE_EVERY === 1) {
      try {
        secrets.get(path).verify(body, req.headers);
        state.verified++;
      } catch {
        state.badSignatures++;
      }
    }
  });
}

function listen(p) {
  return new Promise((resolve, reject) => {
    server = createServer({ keepAlive: true }, onRequest);
    server.keepAliveTimeout = 60_000;
    server.on('connection', (s) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    server.once('error', reject);
    server.listen(p, '127.0.0.1', () => resolve(server.address().port));
  });
}

serve({
  async listen() {
    port = await listen(0);
    return { port };
  },
  /** `endpoints`: [{path, secret}], endpoint i getting topic i of T = endpoints.length; forgets the past. */
  register({ endpoints }) {
    secrets.clear();
    seen.clear();
    topicOfPath.clear();
    topics = endpoints.length;
    endpoints.forEach((e, i) => {
      secrets.set(e.path, new Webhook(e.secret));
      seen.set(e.path, new Set());
      topicOfPath.set(e.path, i);
    });
    return null;
  },
  /** Starts a fresh measurement window (latency and counters), keeping the ids seen. */
  record() {
    Object.assign(state, {
      received: 0,
      dups: 0,
      verified: 0,
      badSignatures: 0,
      unknownPath: 0,
      lastAt: 0,
      lastNewAt: 0,
    });
    state.hist = new Histogram();
    return null;
  },
  /** `upTo`: of events `bench-0` … `bench-<upTo - 1>`, counts those an endpoint should have and lacks. */
  stats({ upTo } = {}) {
    let missing = 0;
    let incomplete = 0;
    if (upTo) {
      for (const [path, set] of seen) {
        let m = 0;
        for (let n = topicOfPath.get(path); n < upTo; n += topics) if (!set.has(`bench-${n}`)) m++;
        missing += m;
        if (m) incomplete++;
      }
    }
    return {
      received: state.received,
      dups: state.dups,
      verified: state.verified,
      badSignatures: state.badSignatures,
      unknownPath: state.unknownPath,
      lastAt: state.lastAt,
      lastNewAt: state.lastNewAt,
      missing,
      incomplete,
      hist: state.hist.toJSON(),
    };
  },
  /** The receiver goes away: no listener, every keep-alive socket cut. */
  async down() {
    const s = server;
    server = null;
    await new Promise((resolve) => {
      s.close(() => resolve());
      for (const sock of sockets) sock.destroy();
    });
    return null;
  },
  async up() {
    await listen(port);
    return null;
  },
});
