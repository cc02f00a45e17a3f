// A pool of subscriber clients in its own process (a few thousand at most: the per-process fd limit).
// Socket.IO clients are real `socket.io-client` sockets (websocket transport); SSE clients are node:http
// requests with a frame parser. Every delivery is checked as it arrives and again at the end:
// - broadcast clients (all on `events.bench.>`): every event of a bench stream matches, so seqs must follow
//   each other; a seq at or below the last one is a duplicate, a jump is a gap;
// - topic clients (one of T topics `events.bench.t<k>.>`, and with `broadcastToo` also `events.bench.tick`):
//   seqs must rise (else duplicate); at the end the seqs received are compared with the seqs the publisher
//   stored on that topic (and the broadcast seqs), from a phase's `fromSeq` on (missing = gaps or loss).
// Latency = receipt time − the publish time carried in the event (`event.data.t`).
// A connection the server (not the bench) ends is resumed from the last cursor, as a real client would.
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { serve } from '../lib/workers.mjs';
import { cursorSeq, Histogram, nowMs } from '../lib/util.mjs';

const require = createRequire(import.meta.url);
const { io } = require('socket.io-client');

/** This process's loopback source address (fleet.mjs), so thousands of clients do not exhaust one address's ports. */
const localAddress = process.env.HS_BENCH_SOURCE_ADDRESS || undefined;

const clients = [];
let hist = new Histogram();
let recording = false;

function newClient({ url, transport, subjects, topic, targetSeq, awaitLive }) {
  return {
    transport,
    url,
    subjects,
    /** null: broadcast client (contiguous seqs); else the topic index (seqs checked at the end). */
    topic,
    seqs: topic === null ? null : [],
    socket: null,
    req: null,
    connected: false,
    startSeq: null,
    last: 0,
    cursor: null,
    received: 0,
    dups: 0,
    gaps: 0,
    missing: 0,
    gapNotices: 0,
    closings: 0,
    errors: 0,
    /** Why the last failed open failed. */
    lastError: '',
    openedAt: 0,
    /** Until the ack nothing counts as live. */
    ackAt: Infinity,
    firstAt: 0,
    lastAt: 0,
    liveAt: 0,
    awaitLive,
    targetSeq: targetSeq ?? Infinity,
    reachedAt: 0,
    reconnectAt: 0,
    drops: 0,
    closedByUs: false,
  };
}

function onDelivery(c, seq, cursor, t) {
  const now = nowMs();
  if (seq <= c.last) {
    c.dups++;
    return;
  }
  if (c.seqs) c.seqs.push(seq);
  else if (seq !== c.last + 1) {
    c.gaps++;
    c.missing += seq - c.last - 1;
  }
  c.last = seq;
  c.cursor = cursor;
  c.received++;
  c.lastAt = now;
  if (!c.firstAt) c.firstAt = now;
  if (!c.reachedAt && seq >= c.targetSeq) c.reachedAt = now;
  if (c.awaitLive && typeof t === 'number' && t >= c.ackAt) {
    c.awaitLive = false;
    c.liveAt = now;
  }
  if (recording && typeof t === 'number') hist.add(now - t);
}

/** The subscription's start position from the ack / ready cursor; a resume must start where we stopped. */
function onStart(c, cursor) {
  const seq = cursorSeq(cursor);
  c.ackAt = nowMs();
  if (c.startSeq === null) {
    c.startSeq = seq;
    c.last = seq;
    c.cursor = cursor;
  } else if (seq > c.last) {
    c.gaps++;
    if (!c.seqs) c.missing += seq - c.last;
    c.last = seq;
  } else if (seq < c.last) {
    c.dups++;
  }
}

function openSocketIo(c, { cursor, from, timeoutMs }) {
  return new Promise((resolve) => {
    const socket = io(c.url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
      localAddress,
    });
    c.socket = socket;
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!ok) {
        c.errors++;
        c.lastError = why;
      }
      resolve(ok ? null : why);
    };
    const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
    socket.on('connect', () => {
      c.connected = true;
      c.openedAt = nowMs();
      const req = { subjects: c.subjects };
      if (cursor) req.cursor = cursor;
      else if (from) req.from = from;
      socket.emit('subscribe', req, (ack) => {
        if (!ack?.ok) return finish(false, `subscribe refused: ${ack?.error}`);
        onStart(c, ack.cursor);
        finish(true);
      });
    });
    socket.on('event', (m) => onDelivery(c, m.seq, m.cursor, m.event?.data?.t));
    socket.on('gap', () => c.gapNotices++);
    socket.on('closing', () => c.closings++);
    socket.on('connect_error', (err) => finish(false, `connect_error: ${err.message}`));
    socket.on('disconnect', () => {
      c.connected = false;
      if (done) resumeLater(c);
    });
  });
}

function openSse(c, { cursor, from, timeoutMs }) {
  return new Promise((resolve) => {
    const u = new URL('/v1/stream', c.url);
    for (const s of c.subjects) u.searchParams.append('subject', s);
    if (cursor) u.searchParams.set('cursor', cursor);
    else if (from) u.searchParams.set('from', from);
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!ok) {
        c.errors++;
        c.lastError = why;
      }
      resolve(ok ? null : why);
    };
    const timer = setTimeout(() => finish(false, 'timeout'), timeoutMs);
    c.openedAt = nowMs();
    const req = request(u, { agent: false, localAddress, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return finish(false, `HTTP ${res.statusCode}`);
      }
      c.connected = true;
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        buf += chunk;
        let end;
        while ((end = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = '';
          let id = '';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('event: ')) event = line.slice(7);
          }
          if (event === 'ready') {
            onStart(c, id);
            finish(true);
          } else if (event === 'gap') c.gapNotices++;
          else if (event === 'closing') c.closings++;
          else if (event === '' && data) {
            const d = JSON.parse(data);
            onDelivery(c, d.seq, d.cursor, d.event?.data?.t);
          }
        }
      });
      res.on('close', () => {
        c.connected = false;
        if (done) resumeLater(c);
        finish(false, 'closed');
      });
    });
    req.on('error', (err) => {
      c.connected = false;
      finish(false, err.message);
    });
    req.end();
    c.req = req;
  });
}

function open(c, opts) {
  c.closedByUs = false;
  return c.transport === 'sse' ? openSse(c, opts) : openSocketIo(c, opts);
}

/** The server ended an established subscription: come back from the last cursor, as EventSource would. */
function resumeLater(c) {
  if (c.closedByUs || c.startSeq === null) return;
  c.drops++;
  c.closedByUs = true; // this connection is done; the new one resets the flag
  setTimeout(() => void open(c, { cursor: c.cursor, timeoutMs: 60_000 }), 200 + Math.random() * 300);
}

function closeClient(c) {
  c.closedByUs = true;
  c.connected = false;
  if (c.socket) {
    c.socket.removeAllListeners();
    c.socket.disconnect();
    c.socket = null;
  }
  if (c.req) {
    c.req.destroy();
    c.req = null;
  }
}

/** Opens `c` again from its cursor, retrying with the SDK's backoff until `until` (ms). */
async function reconnect(c, until) {
  for (let attempt = 0; ; attempt++) {
    const why = await open(c, { cursor: c.cursor, timeoutMs: Math.max(1_000, until - nowMs()) });
    if (!why || nowMs() >= until) return;
    closeClient(c);
    const ceiling = Math.min(10_000, 250 * 2 ** attempt);
    await new Promise((r) => setTimeout(r, ceiling / 2 + (Math.random() * ceiling) / 2));
  }
}

/** Runs fn over items with at most `limit` in flight. */
async function pool(items, limit, fn) {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(runners);
}

/** The seq a client must reach: the last stored seq of its topic (or of the stream, for a broadcast). */
function targetOf(c, targets) {
  if (c.topic === null || targets.broadcast) return targets.lastSeq;
  return targets.lastByTopic?.[c.topic] ?? 0;
}

serve({
  /**
   * Opens `count` more clients; resolves when every one was acked (or failed). `topics` > 0: client i
   * subscribes to `events.bench.t<i mod topics>.>` instead of `subjects` (and `events.bench.tick` too with
   * `broadcastToo`). `transport` 'mixed': every other client is SSE. `urls`: clients spread over these
   * servers (replicas) instead of `url`.
   */
  async open({
    url,
    urls,
    transport,
    count,
    subjects,
    topics = 0,
    broadcastToo = false,
    cursor,
    from,
    targetSeq,
    awaitLive = false,
    concurrency = 100,
    timeoutMs = 60_000,
  }) {
    const fresh = Array.from({ length: count }, (_, i) => {
      const k = clients.length + i;
      const topic = topics > 0 ? k % topics : null;
      const subs = topic === null ? subjects : [`events.bench.t${topic}.>`];
      if (topic !== null && broadcastToo) subs.push('events.bench.tick');
      const tr = transport === 'mixed' ? (k % 2 ? 'sse' : 'socketio') : transport;
      const server = urls?.length ? urls[Math.floor(k / 2) % urls.length] : url;
      return newClient({ url: server, transport: tr, subjects: subs, topic, targetSeq, awaitLive });
    });
    clients.push(...fresh);
    const errors = [];
    await pool(fresh, concurrency, async (c) => {
      const why = await open(c, { cursor, from, timeoutMs });
      if (why && errors.length < 5) errors.push(why);
    });
    const cursors = fresh.slice(0, 3).map((c) => c.cursor);
    return { opened: fresh.filter((c) => c.startSeq !== null).length, errors, total: clients.length, cursors };
  },

  /** Starts recording latency (the counters always run). */
  record() {
    hist = new Histogram();
    recording = true;
  },

  stop() {
    recording = false;
  },

  /**
   * Counters across the pool; `targets` ({lastSeq, lastByTopic}) adds `behind`: clients that have not yet
   * reached their last stored seq. `full` adds the latency histogram and per-client timings.
   */
  stats({ full = false, targets } = {}) {
    const out = {
      clients: clients.length,
      connected: 0,
      received: 0,
      dups: 0,
      gaps: 0,
      missing: 0,
      gapNotices: 0,
      closings: 0,
      errors: 0,
      live: 0,
      reached: 0,
      drops: 0,
      behind: 0,
      minLast: Infinity,
      firstAt: Infinity,
      lastAt: 0,
    };
    for (const c of clients) {
      if (c.connected) out.connected++;
      out.received += c.received;
      out.dups += c.dups;
      out.gaps += c.gaps;
      out.missing += c.missing;
      out.gapNotices += c.gapNotices;
      out.closings += c.closings;
      out.errors += c.errors;
      out.drops += c.drops;
      if (c.liveAt) out.live++;
      if (c.reachedAt) out.reached++;
      if (targets && c.startSeq !== null && c.last < targetOf(c, targets)) out.behind++;
      if (c.topic === null) out.minLast = Math.min(out.minLast, c.last);
      if (c.firstAt && c.firstAt < out.firstAt) out.firstAt = c.firstAt;
      if (c.lastAt > out.lastAt) out.lastAt = c.lastAt;
    }
    if (out.minLast === Infinity) out.minLast = 0;
    if (out.firstAt === Infinity) out.firstAt = 0;
    if (full) {
      // Why opens failed, by reason (a few at most).
      const reasons = {};
      for (const c of clients) if (c.lastError) reasons[c.lastError] = (reasons[c.lastError] ?? 0) + 1;
      out.errorReasons = Object.fromEntries(
        Object.entries(reasons)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 5),
      );
      out.hist = hist.toJSON();
      out.timings = clients.map((c) => ({
        transport: c.transport,
        topic: c.topic,
        dups: c.dups,
        gaps: c.gaps,
        missing: c.missing,
        openedAt: c.openedAt,
        ackAt: c.ackAt,
        firstAt: c.firstAt,
        reachedAt: c.reachedAt,
        liveAt: c.liveAt,
        reconnectAt: c.reconnectAt,
        received: c.received,
        startSeq: c.startSeq,
        last: c.last,
      }));
    }
    return out;
  },

  /**
   * Final check against what was stored: `lastSeq` (broadcast clients must have every seq up to it) and
   * `seqsByTopic` (topic clients must have exactly their topic's seqs after their start, up to lastSeq, plus
   * `broadcastSeqs` when they also watch the broadcast subject). Only seqs after `fromSeq` count for topic
   * clients (one phase of several). Adds what never came to `missing`; `unexpected` counts seqs a topic client
   * got that it should not have.
   */
  verify({ lastSeq, seqsByTopic, broadcastSeqs = [], fromSeq = 0 }) {
    const out = {
      clients: clients.length,
      incomplete: 0,
      missingAtEnd: 0,
      dups: 0,
      gaps: 0,
      missing: 0,
      unexpected: 0,
    };
    for (const c of clients) {
      out.dups += c.dups;
      out.gaps += c.gaps;
      out.missing += c.missing;
      if (c.startSeq === null) continue;
      if (c.topic === null) {
        if (c.last < lastSeq) {
          out.incomplete++;
          out.missingAtEnd += lastSeq - c.last;
          out.missing += lastSeq - c.last;
        }
        continue;
      }
      const after = Math.max(c.startSeq, fromSeq);
      const mine =
        c.subjects.length > 1 ? [...(seqsByTopic?.[c.topic] ?? []), ...broadcastSeqs] : (seqsByTopic?.[c.topic] ?? []);
      const expected = mine.filter((s) => s > after && s <= lastSeq);
      const got = new Set(c.seqs);
      let missing = 0;
      for (const s of expected) if (!got.has(s)) missing++;
      const want = new Set(expected);
      for (const s of c.seqs) if (s > after && s <= lastSeq && !want.has(s)) out.unexpected++;
      if (missing) {
        out.incomplete++;
        out.missing += missing;
        // A seq missing before the last one received is a gap; after it, the client never caught up.
        const lastGot = c.seqs.at(-1) ?? c.startSeq;
        const atEnd = expected.filter((s) => s > lastGot).length;
        out.missingAtEnd += atEnd;
        out.gaps += missing - atEnd;
      }
    }
    return out;
  },

  /**
   * Reconnect storm: every client drops its connection at once, then all reconnect with their last cursor; a
   * reconnect that fails is retried as the SDK does (packages/client/src/backoff.ts: from 250 ms, doubling up to
   * 10 s, jittered between half and all of each step) until `timeoutMs` has passed.
   * Returns when the reconnects were started; `stats().live` counts clients live again (a delivery published
   * after their resubscribe was acked has arrived, so everything before it came first).
   */
  storm({ timeoutMs = 60_000 }) {
    const at = nowMs();
    for (const c of clients) closeClient(c);
    for (const c of clients) {
      c.reconnectAt = at;
      c.ackAt = Infinity;
      c.liveAt = 0;
      c.awaitLive = true;
      void reconnect(c, at + timeoutMs);
    }
    return { at };
  },

  closeAll() {
    for (const c of clients) closeClient(c);
    clients.length = 0;
    return null;
  },

  exit() {
    for (const c of clients) closeClient(c);
  },
});
