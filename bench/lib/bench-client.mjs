// One bench subscriber client and its connection: a real `socket.io-client` socket (websocket transport) or an
// SSE request over node:http with a frame parser, each delivery checked as it arrives (duplicates, gaps, the
// seqs of a topic client kept for the end), resumed from the last cursor when the server ends it, reopened
// with the SDK's backoff after a storm. The pool process (bench/workers/clients.mjs) holds many of these.
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { cursorSeq, Histogram, nowMs } from './util.mjs';

const require = createRequire(import.meta.url);
const { io } = require('socket.io-client');

/** This process's loopback source address (fleet.mjs), so thousands of clients do not exhaust one address's ports. */
const localAddress = process.env.HS_BENCH_SOURCE_ADDRESS || undefined;

/** Latency of deliveries, recorded between the pool's `record` and `stop` commands. */
export const latency = { hist: new Histogram(), recording: false };

export function newClient({ url, transport, subjects, topic, targetSeq, awaitLive }) {
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
  if (latency.recording && typeof t === 'number') latency.hist.add(now - t);
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

/**
 * One open attempt of client c: `finish(ok, why)` settles it once (a failure is counted on c and resolves with
 * its reason, success with null); it fails with 'timeout' after timeoutMs. `done` says whether it has settled.
 */
function openAttempt(c, resolve, timeoutMs) {
  const attempt = {
    done: false,
    finish(ok, why) {
      if (attempt.done) return;
      attempt.done = true;
      clearTimeout(timer);
      if (!ok) {
        c.errors++;
        c.lastError = why;
      }
      resolve(ok ? null : why);
    },
  };
  const timer = setTimeout(() => attempt.finish(false, 'timeout'), timeoutMs);
  return attempt;
}

/**
 * One open attempt over Socket.IO. The client's socket.io-client socket is made once and connected again for
 * each reconnect (`socket.connect()`), as the SDK does (packages/client/src/socket-transport.ts): its listeners
 * act on the client's current attempt, `c.attempt`.
 */
function openSocketIo(c, { cursor, from, timeoutMs }) {
  return new Promise((resolve) => {
    const attempt = openAttempt(c, resolve, timeoutMs);
    attempt.cursor = cursor;
    attempt.from = from;
    c.attempt = attempt;
    if (c.socket) {
      // The Manager's connect timeout is this attempt's, as when each attempt made its own io().
      c.socket.io.timeout(timeoutMs);
      c.socket.connect();
    } else c.socket = newSocket(c, timeoutMs);
  });
}

/** What engine.io-client's 'websocket error' wraps (a ws ErrorEvent): `connect EADDRINUSE`, `socket hang up`, … */
function cause(err) {
  const inner = err?.description?.error?.message ?? err?.description?.message;
  return typeof inner === 'string' && inner !== err.message
    ? ` (${inner.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDR')})`
    : '';
}

function newSocket(c, timeoutMs) {
  const socket = io(c.url, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    timeout: timeoutMs,
    localAddress,
  });
  socket.on('connect', () => {
    const attempt = c.attempt;
    c.connected = true;
    c.openedAt = nowMs();
    const req = { subjects: c.subjects };
    if (attempt.cursor) req.cursor = attempt.cursor;
    else if (attempt.from) req.from = attempt.from;
    socket.emit('subscribe', req, (ack) => {
      if (c.attempt !== attempt) return;
      if (!ack?.ok) return attempt.finish(false, `subscribe refused: ${ack?.error}`);
      onStart(c, ack.cursor);
      attempt.finish(true);
    });
  });
  socket.on('event', (m) => onDelivery(c, m.seq, m.cursor, m.event?.data?.t));
  socket.on('gap', () => c.gapNotices++);
  socket.on('closing', () => c.closings++);
  socket.on('connect_error', (err) => c.attempt.finish(false, `connect_error: ${err.message}${cause(err)}`));
  socket.on('disconnect', () => {
    c.connected = false;
    if (c.attempt.done) resumeLater(c);
  });
  return socket;
}

function openSse(c, { cursor, from, timeoutMs }) {
  return new Promise((resolve) => {
    const u = new URL('/v1/stream', c.url);
    for (const s of c.subjects) u.searchParams.append('subject', s);
    if (cursor) u.searchParams.set('cursor', cursor);
    else if (from) u.searchParams.set('from', from);
    const attempt = openAttempt(c, resolve, timeoutMs);
    const finish = attempt.finish;
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
        if (attempt.done) resumeLater(c);
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

export function open(c, opts) {
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

/**
 * Drops c's connection as a network failure would, keeping its socket.io-client socket for the reconnect (the
 * SDK keeps its socket too); nothing resumes it until reconnect() is called.
 */
export function dropClient(c) {
  c.closedByUs = true;
  c.connected = false;
  if (c.socket) {
    // Reset the TCP connection, as a network failure or a proxy's restart does, rather than closing it politely: a
    // polite close leaves each client's port in TIME_WAIT for a minute, and the reconnect's bind then has to search
    // past them all (0.3–0.6 ms of kernel time per connect with 10,000 in TIME_WAIT), a cost of the load client
    // alone. The server sees the reset on its next read, as it would in production.
    const tcp = c.socket.io.engine?.transport?.ws?._socket;
    if (tcp && typeof tcp.resetAndDestroy === 'function') tcp.resetAndDestroy();
    else c.socket.disconnect();
  }
  if (c.req) {
    if (c.req.socket) c.req.socket.resetAndDestroy();
    c.req.destroy();
    c.req = null;
  }
}

export function closeClient(c) {
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

/**
 * The SDK's backoff before reconnect attempt n (packages/client/src/backoff.ts): 250 ms doubling up to 10 s,
 * jittered between half and all of the step.
 */
function backoffMs(attempt) {
  const ceiling = Math.min(10_000, 250 * 2 ** attempt);
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

/**
 * Opens `c` again from its cursor after a dropped connection, as the SDK does: the first attempt after one
 * backoff step (125–250 ms: clients dropped together do not come back in the same instant), then retrying with
 * the growing backoff until `until` (ms).
 */
export async function reconnect(c, until) {
  for (let attempt = 0; ; attempt++) {
    await new Promise((r) => setTimeout(r, backoffMs(attempt)));
    const why = await open(c, { cursor: c.cursor, timeoutMs: Math.max(1_000, until - nowMs()) });
    if (!why || nowMs() >= until) return;
    closeClient(c);
  }
}
