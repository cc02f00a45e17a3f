// The catch-up's client ceiling: a server that does nothing but write pre-built frames from memory. `load` reads
// the stored range once (JetStream: an ordered consumer; embedded: paged SQLite reads of the log file, after the
// gateway stopped) and builds, per event, the very bytes Hookstream sends for it: the SSE frame
// `id: <cursor>\ndata: {"cursor","seq","subject","event":<stored envelope>}\n\n`, and the WebSocket text frame of
// engine.io message `42["event",{"subscription","cursor","seq","subject","event"}]`; back to back in large
// chunks. `listen` serves them: a Socket.IO `subscribe` is acked with the cursor it came with, then every chunk is
// written to the connection's TCP socket; `GET /v1/stream` writes the `retry` and `ready` frames, then the chunks.
// Writes wait for 'drain' when the socket's buffer is full, as any server must. No store reads, no filter, no
// per-event work while sending: what the bench's client process can take when the server costs (almost) nothing.
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { serve } from '../lib/workers.mjs';

const require = createRequire(import.meta.url);
const { Server } = require('socket.io');

/** Bytes per chunk written (whole frames; a chunk ends after the frame that crosses this size). */
const CHUNK = 256 * 1024;

const state = { sio: [], sse: [], events: 0, http: null, io: null };

/** Appends frames to chunks of about CHUNK bytes. */
function chunker(into) {
  let parts = [];
  let size = 0;
  return {
    add(buf) {
      parts.push(buf);
      size += buf.length;
      if (size >= CHUNK) this.flush();
    },
    flush() {
      if (size) into.push(Buffer.concat(parts, size));
      parts = [];
      size = 0;
    },
  };
}

/** A server's (unmasked) WebSocket text frame header for `n` payload bytes. */
function wsHeader(n) {
  if (n < 126) return Buffer.from([0x81, n]);
  if (n < 65536) {
    const h = Buffer.alloc(4);
    h[0] = 0x81;
    h[1] = 126;
    h.writeUInt16BE(n, 2);
    return h;
  }
  const h = Buffer.alloc(10);
  h[0] = 0x81;
  h[1] = 127;
  h.writeBigUInt64BE(BigInt(n), 2);
  return h;
}

/** Every stored event with fromSeq < seq ≤ toSeq whose subject starts with `prefix`: fn(seq, subject, bytes). */
async function readRange({ store, natsUrl, dataDir, fromSeq, toSeq, prefix }, fn) {
  if (store === 'jetstream') {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstream, DeliverPolicy } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: natsUrl });
    const consumer = await jetstream(nc).consumers.get('EVENTS', {
      filter_subjects: 'events.>',
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: fromSeq + 1,
    });
    const messages = await consumer.consume({ max_messages: 1024 });
    for await (const m of messages) {
      if (m.subject.startsWith(prefix)) fn(m.seq, m.subject, Buffer.from(m.data));
      if (m.seq >= toSeq) break;
    }
    await nc.close();
    return;
  }
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(dataDir, 'hookstream.db'), { readonly: true });
  const page = db.prepare('SELECT seq, subject, data FROM events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 4096');
  let from = fromSeq;
  for (;;) {
    const rows = page.all(from, toSeq);
    if (rows.length === 0) break;
    for (const r of rows) if (r.subject.startsWith(prefix)) fn(r.seq, r.subject, Buffer.from(r.data));
    from = rows[rows.length - 1].seq;
  }
  db.close();
}

async function writeAll(sock, chunks) {
  for (const c of chunks) {
    if (sock.destroyed) return;
    if (!sock.write(c)) await once(sock, 'drain');
  }
}

serve({
  /** Reads (fromSeq, toSeq] and builds both transports' frames; `epoch` makes the cursors, `prefix` filters. */
  async load({ store, natsUrl, dataDir, fromSeq, toSeq, epoch, prefix, subscription = 's1' }) {
    const sio = chunker(state.sio);
    const sse = chunker(state.sse);
    const sioHead = `2["event",{"subscription":${JSON.stringify(subscription)},`;
    let bytesSio = 0;
    let bytesSse = 0;
    await readRange({ store, natsUrl, dataDir, fromSeq, toSeq, prefix }, (seq, subject, data) => {
      const cursor = `${epoch}_${seq}`;
      const head = `"cursor":${JSON.stringify(cursor)},"seq":${seq},"subject":${JSON.stringify(subject)},"event":`;
      const msg = Buffer.concat([Buffer.from(`4${sioHead}${head}`), data, Buffer.from('}]')]);
      const frame = Buffer.concat([wsHeader(msg.length), msg]);
      sio.add(frame);
      bytesSio += frame.length;
      const ev = Buffer.concat([Buffer.from(`id: ${cursor}\ndata: {${head}`), data, Buffer.from('}\n\n')]);
      sse.add(ev);
      bytesSse += ev.length;
      state.events++;
    });
    sio.flush();
    sse.flush();
    return { events: state.events, bytesSio, bytesSse };
  },

  /** Starts the server on a free loopback port; resolves with its URL. */
  async listen() {
    const http = createServer();
    const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
    io.on('connection', (socket) => {
      socket.on('subscribe', (req, ack) => {
        const cursor = req?.cursor ?? '';
        ack?.({ ok: true, id: 's1', cursor });
        // The ack is written synchronously to the ws socket; the frames follow it on the same TCP socket.
        const tcp = socket.conn.transport.socket._socket;
        setImmediate(() => void writeAll(tcp, state.sio));
      });
    });
    http.on('request', (req, res) => {
      if (req.url.startsWith('/socket.io')) return;
      if (req.method !== 'GET' || !req.url.startsWith('/v1/stream')) {
        res.writeHead(404).end();
        return;
      }
      const cursor = new URL(req.url, 'http://x').searchParams.get('cursor') ?? '';
      res.writeHead(200, {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-transform',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
      });
      res.socket?.setNoDelay(true);
      res.write(`retry: 2000\n\nevent: ready\nid: ${cursor}\ndata: {"cursor":"${cursor}"}\n\n`);
      void (async () => {
        for (const c of state.sse) {
          if (res.destroyed) return;
          if (!res.write(c)) await once(res, 'drain');
        }
      })();
    });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    state.http = http;
    state.io = io;
    return { url: `http://127.0.0.1:${http.address().port}` };
  },

  exit() {
    state.io?.close();
    state.http?.close();
  },
});
