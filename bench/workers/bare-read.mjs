// The catch-up reference: read a range of the stream as fast as a bare reader can, in its own process.
// jetstream: one ordered consumer from `fromSeq` (nats.js consume, 1024 in flight); embedded: paged SQLite
// reads of the gateway's own log file (after the gateway stopped: the log is single-owner). No parsing, no
// sending: the ceiling a catch-up to a client is compared with.
import { join } from 'node:path';
import { serve } from '../lib/workers.mjs';
import { nowMs } from '../lib/util.mjs';

serve({
  async read({ store, natsUrl, dataDir, fromSeq, count }) {
    let n = 0;
    let last = fromSeq - 1;
    let gaps = 0;
    let t0;
    if (store === 'jetstream') {
      const { connect } = await import('@nats-io/transport-node');
      const { jetstream, DeliverPolicy } = await import('@nats-io/jetstream');
      const nc = await connect({ servers: natsUrl });
      t0 = nowMs();
      const consumer = await jetstream(nc).consumers.get('EVENTS', {
        filter_subjects: 'events.>',
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: fromSeq,
      });
      const messages = await consumer.consume({ max_messages: 1024 });
      for await (const m of messages) {
        if (m.seq !== last + 1) gaps++;
        last = m.seq;
        if (++n >= count) break;
      }
      const elapsed = nowMs() - t0;
      await nc.close();
      return { count: n, elapsedMs: elapsed, rate: n / (elapsed / 1000), gaps };
    }
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(join(dataDir, 'hookstream.db'), { readonly: true });
    const page = db.prepare('SELECT seq, subject, time, data FROM events WHERE seq >= ? ORDER BY seq LIMIT 512');
    t0 = nowMs();
    let from = fromSeq;
    while (n < count) {
      const rows = page.all(from);
      if (rows.length === 0) break;
      for (const r of rows) {
        if (r.seq !== last + 1) gaps++;
        last = r.seq;
        if (++n >= count) break;
      }
      from = last + 1;
      // A reader serving clients yields between pages; so does this one.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const elapsed = nowMs() - t0;
    db.close();
    return { count: n, elapsedMs: elapsed, rate: n / (elapsed / 1000), gaps };
  },
});
