// Bare fan-out reference: the fastest honest live fan-out one could write without Hookstream, speaking the
// same wire shapes so the same clients measure both.
// - Feed (jetstream): ONE ordered consumer on the stream (deliver new). Feed (embedded): POST /v1/events
//   appends to SQLite (group commit, WAL, synchronous=FULL) and broadcasts after the commit.
// - Socket.IO: a plain server (websocket only, no compression); `subscribe` joins one room per subject pattern
//   and acks `{ok, id, cursor}`; each event is ONE broadcast (encoded once) of `{subscription, cursor, seq,
//   subject, event}` to the rooms whose pattern matches its subject.
// - SSE: `GET /v1/stream?subject=…` writes `retry`, `event: ready`, then one frame per matching event, serialised
//   once for everyone.
// Patterns are exact subjects or end in `>` (what the bench subscribes with): an event's rooms are looked up from
// the prefixes of its subject, so routing costs the same with 1 room or 1,000. No cursors, no resume, no auth,
// no slow-consumer handling: just live delivery.
//   node bench/refs/ref-fanout.mjs --port N --store jetstream|embedded [--nats URL] [--data DIR]
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { openFeed, reply, servePublish } from './feed.mjs';

const require = createRequire(import.meta.url);
const { Server } = require('socket.io');

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, store: { type: 'string' }, nats: { type: 'string' }, data: { type: 'string' } },
});

const EPOCH = 'ref';
let head = 0;
let ready = false;
/** SSE responses by subject pattern. */
const sse = new Map();
/** Socket.IO rooms (patterns) someone joined, so a lookup skips the rest. */
const rooms = new Set();

/** The subscribed patterns an event subject matches: the subject itself and each `<prefix>.>`. */
function patternsOf(subject, known) {
  const out = [];
  if (known.has(subject)) out.push(subject);
  for (let i = subject.indexOf('.'); i !== -1; i = subject.indexOf('.', i + 1)) {
    const p = `${subject.slice(0, i)}.>`;
    if (known.has(p)) out.push(p);
  }
  return out;
}

const http = createServer();
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
io.on('connection', (socket) => {
  socket.on('subscribe', (req, ack) => {
    for (const p of req?.subjects ?? []) {
      rooms.add(p);
      socket.join(p);
    }
    if (typeof ack === 'function') ack({ ok: true, id: 'ref', cursor: `${EPOCH}_${head}` });
  });
});

/** One stored event → every client, encoded once per transport. */
function broadcast(seq, subject, text) {
  head = seq;
  const cursor = `${EPOCH}_${seq}`;
  const to = patternsOf(subject, rooms);
  if (to.length) io.to(to).emit('event', { subscription: 'ref', cursor, seq, subject, event: JSON.parse(text) });
  const streams = patternsOf(subject, sse);
  if (streams.length) {
    const frame = `id: ${cursor}\ndata: {"cursor":"${cursor}","seq":${seq},"subject":"${subject}","event":${text}}\n\n`;
    // A stream on two matching patterns gets the event once.
    const seen = streams.length > 1 ? new Set() : null;
    for (const p of streams) {
      for (const res of sse.get(p)) {
        if (seen) {
          if (seen.has(res)) continue;
          seen.add(res);
        }
        res.write(frame);
      }
    }
  }
}

let publish; // embedded feed only: (items) => Promise<seq[]>

http.on('request', (req, res) => {
  if (req.url.startsWith('/socket.io')) return; // socket.io's own handler
  if (req.method === 'GET' && req.url === '/healthz') return reply(res, ready ? 200 : 503, { ok: ready });
  if (req.method === 'GET' && req.url.startsWith('/v1/stream')) {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    const cursor = `${EPOCH}_${head}`;
    res.write(`retry: 2000\n\nevent: ready\nid: ${cursor}\ndata: {"cursor":"${cursor}"}\n\n`);
    const patterns = new URL(req.url, 'http://x').searchParams.getAll('subject');
    for (const p of patterns) {
      if (!sse.has(p)) sse.set(p, new Set());
      sse.get(p).add(res);
    }
    res.once('close', () => {
      for (const p of patterns) sse.get(p).delete(res);
    });
    return;
  }
  if (req.method === 'POST' && req.url === '/v1/events' && publish) return servePublish(req, res, publish, EPOCH);
  reply(res, 404, { error: 'not_found' });
});

// Events may arrive before openFeed resolves: the head only moves forward.
const feed = await openFeed(args, broadcast);
head = Math.max(head, feed.head);
publish = feed.publish;

http.listen(Number(args.port), '127.0.0.1', () => (ready = true));
process.on('SIGTERM', () => process.exit(0));
