// GRIP origin for Pushpin, the peer in the SSE fan-out scenario. Pushpin holds the client connections; this
// process only answers the opening request and publishes events, so what is measured is Pushpin's fan-out.
// - `GET /v1/stream`: `Grip-Hold: stream` on channel `live`, with the same opening frames the bare reference
//   writes (retry, `event: ready` with the current cursor). Pushpin keeps the connection and appends whatever
//   is published to `live`.
// - Feed: the same as the bare reference (jetstream: ONE ordered consumer from the stream's head; embedded:
//   POST /v1/events appends to SQLite and publishes after the commit).
// - Each event is published ONCE to Pushpin's HTTP publish endpoint in the `http-stream` format, with the
//   bare reference's frame bytes. The events of one event-loop turn go in one publish request; requests
//   queue on one socket and go one at a time, so Pushpin receives the items in stream order.
//   node bench/refs/ref-pushpin.mjs --port N --store jetstream|embedded --publish URL [--nats URL] [--data DIR]
import { Agent, createServer, request } from 'node:http';
import { parseArgs } from 'node:util';
import { openFeed, reply, servePublish } from './feed.mjs';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    store: { type: 'string' },
    nats: { type: 'string' },
    data: { type: 'string' },
    publish: { type: 'string' },
  },
});

const EPOCH = 'ref';
const CHANNEL = 'live';
let head = 0;
let ready = false;

// ---- publishing to Pushpin: one request per event-loop turn, in order ----------------------------------------

const publishUrl = new URL(args.publish);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
let batch = [];
let failures = 0;

function flush() {
  const body = `{"items":[${batch.join(',')}]}`;
  batch = [];
  const req = request(publishUrl, {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  req.on('response', (res) => {
    if (res.statusCode !== 200 && failures++ < 5) process.stderr.write(`publish answered HTTP ${res.statusCode}\n`);
    res.resume();
  });
  req.on('error', (err) => {
    if (failures++ < 5) process.stderr.write(`publish failed: ${err.message}\n`);
  });
  req.end(body);
}

/** One stored event → one item for every subscriber of the channel, framed as the bare reference frames it. */
function broadcast(seq, subject, text) {
  head = seq;
  const cursor = `${EPOCH}_${seq}`;
  const frame = `id: ${cursor}\ndata: {"cursor":"${cursor}","seq":${seq},"subject":"${subject}","event":${text}}\n\n`;
  if (batch.length === 0) setImmediate(flush);
  batch.push(`{"channel":"${CHANNEL}","formats":{"http-stream":{"content":${JSON.stringify(frame)}}}}`);
}

// ---- the origin's HTTP side -------------------------------------------------------------------------------------

let publish; // embedded feed only: (items) => seq[]

const http = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return reply(res, ready ? 200 : 503, { ok: ready });
  if (req.method === 'GET' && req.url.startsWith('/v1/stream')) {
    const cursor = `${EPOCH}_${head}`;
    const body = `retry: 2000\n\nevent: ready\nid: ${cursor}\ndata: {"cursor":"${cursor}"}\n\n`;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'Grip-Hold': 'stream',
      'Grip-Channel': CHANNEL,
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(body);
    return;
  }
  if (req.method === 'POST' && req.url === '/v1/events' && publish) return servePublish(req, res, publish, EPOCH);
  reply(res, 404, { error: 'not_found' });
});

// ---- the feed: exactly the bare reference's ---------------------------------------------------------------------

// Events may arrive before openFeed resolves: the head only moves forward.
const feed = await openFeed(args, broadcast);
head = Math.max(head, feed.head);
publish = feed.publish;

http.listen(Number(args.port), '127.0.0.1', () => (ready = true));
process.on('SIGTERM', () => process.exit(0));
