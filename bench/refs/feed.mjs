// The bare references' feed, shared by ref-fanout.mjs and ref-pushpin.mjs so both measure the same input:
// - jetstream: ONE ordered consumer on the stream from its head (deliver new), each message to `onEvent`;
// - embedded: no feed of its own; `publish(items)` appends a `/v1/events` batch to SQLite (group commit, WAL,
//   synchronous=FULL) and hands each stored event to `onEvent` after the commit.
// `onEvent(seq, subject, envelopeText)` is called in stream order. Resolves to `{ head, publish }`: the last
// stored sequence at start, and the embedded store's append (undefined on JetStream).
import { join } from 'node:path';

export async function openFeed({ store, nats, data }, onEvent) {
  if (store === 'jetstream') {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstream, jetstreamManager, DeliverPolicy } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: nats });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'] }).catch(() => undefined);
    const head = (await jsm.streams.info('EVENTS')).state.last_seq;
    const consumer = await jetstream(nc).consumers.get('EVENTS', {
      filter_subjects: 'events.>',
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: head + 1,
    });
    const messages = await consumer.consume({ max_messages: 1024 });
    const decoder = new TextDecoder();
    void (async () => {
      for await (const m of messages) onEvent(m.seq, m.subject, decoder.decode(m.data));
    })();
    return { head, publish: undefined };
  }
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(data, 'ref.db'));
  for (const p of ['journal_mode = WAL', 'synchronous = FULL']) db.pragma(p);
  db.exec('CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, subject TEXT, time INTEGER, data BLOB)');
  const insert = db.prepare('INSERT INTO events (subject, time, data) VALUES (?, ?, ?)');
  const commit = db.transaction((rows) =>
    rows.map((r) => Number(insert.run(r.subject, r.time, r.data).lastInsertRowid)),
  );
  const publish = (items) => {
    const now = Date.now();
    const rows = items.map((item) => {
      const text = JSON.stringify({
        specversion: '1.0',
        id: item.id ?? String(now),
        source: '/v1/events',
        type: item.type ?? item.subject.slice('events.'.length),
        time: new Date(now).toISOString(),
        datacontenttype: 'application/json',
        data: item.data,
      });
      return { subject: item.subject, time: now, text, data: Buffer.from(text) };
    });
    const seqs = commit(rows);
    rows.forEach((r, i) => onEvent(seqs[i], r.subject, r.text));
    return seqs;
  };
  return { head: 0, publish };
}

/**
 * `POST /v1/events` for the embedded feed: a batch (or one item) appended with `publish`, answered 202 with each
 * item's seq and cursor (`<epoch>_<seq>`), or 400 when the body is not JSON.
 */
export function servePublish(req, res, publish, epoch) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let items;
    try {
      const parsed = JSON.parse(Buffer.concat(chunks));
      items = Array.isArray(parsed) ? parsed : [parsed];
    } catch {
      return reply(res, 400, { error: 'invalid_payload' });
    }
    const seqs = await publish(items);
    reply(res, 202, { results: seqs.map((seq) => ({ seq, cursor: `${epoch}_${seq}`, duplicate: false })) });
  });
}

export function reply(res, status, obj) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
