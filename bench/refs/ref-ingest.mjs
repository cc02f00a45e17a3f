// Bare ingest reference: the fastest honest webhook receiver one could write without Hookstream.
// node:http + node:crypto (Standard Webhooks verify, constant-time, with timestamp tolerance) + a durable
// append that is awaited before the 202: nats.js `js.publish` with a msgID (JetStream's own dedupe), or a
// group-committed SQLite insert (WAL, synchronous=FULL, msgId unique) for the embedded comparison.
//   node bench/refs/ref-ingest.mjs --port N --store jetstream|embedded [--nats URL] [--data DIR]
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_KEY } from '../lib/util.mjs';

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, store: { type: 'string' }, nats: { type: 'string' }, data: { type: 'string' } },
});

const TOLERANCE_S = 300;
let append; // (subject, msgId, data: string) => Promise<number>
let ready = false;

if (args.store === 'jetstream') {
  const { connect } = await import('@nats-io/transport-node');
  const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: args.nats });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'] }).catch(() => undefined);
  const js = jetstream(nc);
  append = async (subject, msgId, data) => (await js.publish(subject, data, { msgID: msgId })).seq;
} else {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(args.data, 'ref.db'));
  for (const p of ['journal_mode = WAL', 'synchronous = FULL']) db.pragma(p);
  db.exec(
    'CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, msg_id TEXT UNIQUE, subject TEXT, time INTEGER, data BLOB)',
  );
  const insert = db.prepare('INSERT OR IGNORE INTO events (msg_id, subject, time, data) VALUES (?, ?, ?, ?)');
  const find = db.prepare('SELECT seq FROM events WHERE msg_id = ?');
  // Group commit: one transaction per tick, then every waiter learns its seq.
  let queue = [];
  const flush = db.transaction((batch) => {
    for (const item of batch) {
      const r = insert.run(item.msgId, item.subject, Date.now(), item.data);
      item.seq = r.changes ? Number(r.lastInsertRowid) : find.get(item.msgId).seq;
    }
  });
  append = (subject, msgId, data) =>
    new Promise((resolve, reject) => {
      if (queue.length === 0) {
        setImmediate(() => {
          const batch = queue;
          queue = [];
          try {
            flush(batch);
            for (const item of batch) item.resolve(item.seq);
          } catch (err) {
            for (const item of batch) item.reject(err);
          }
        });
      }
      queue.push({ subject, msgId, data: Buffer.from(data), resolve, reject });
    });
}

function verify(headers, body) {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = headers['webhook-signature'];
  if (!id || !ts || !sigs) return false;
  const expected = createHmac('sha256', BENCH_KEY).update(`${id}.${ts}.`).update(body).digest();
  let ok = false;
  for (const part of sigs.split(' ')) {
    if (!part.startsWith('v1,')) continue;
    const got = Buffer.from(part.slice(3), 'base64');
    if (got.length === expected.length && timingSafeEqual(got, expected)) ok = true;
  }
  return ok && Math.abs(Date.now() / 1000 - Number(ts)) <= TOLERANCE_S;
}

function reply(res, status, obj) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return reply(res, ready ? 200 : 503, { ok: ready });
  if (req.method !== 'POST' || req.url !== '/webhooks/bench') return reply(res, 404, { error: 'unknown_source' });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const body = Buffer.concat(chunks);
    if (!verify(req.headers, body)) return reply(res, 401, { error: 'invalid_signature' });
    let type;
    try {
      type = JSON.parse(body).type;
    } catch {
      return reply(res, 400, { error: 'invalid_payload' });
    }
    const id = req.headers['webhook-id'];
    const subject = `events.bench.${String(type ?? 'webhook').replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    const envelope =
      `{"specversion":"1.0","id":${JSON.stringify(id)},"source":"/webhooks/bench","type":${JSON.stringify(type)},` +
      `"time":"${new Date().toISOString()}","datacontenttype":"application/json","data":${body}}`;
    try {
      const seq = await append(subject, `bench:${id}`, envelope);
      reply(res, 202, { status: 'accepted', id, subject, seq });
    } catch {
      reply(res, 503, { error: 'unavailable' });
    }
  });
});
server.keepAliveTimeout = 30_000;
server.listen(Number(args.port), '127.0.0.1', () => (ready = true));
process.on('SIGTERM', () => process.exit(0));
