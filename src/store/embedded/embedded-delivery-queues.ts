/**
 * Delivery queues (delivery-queue.port.ts) in the embedded log's SQLite file: one position row per queue and one row
 * per event handed out and not yet acked or dropped (its hand-out count and when it is next due). Committed with
 * each call, so a restart continues where the process stopped; a hand-out cut off by a crash is due again after
 * `ackWaitMs`. One process owns the file, so waiting is in memory: a new event wakes only the fetches of queues whose
 * filter it matches, and a settled item only its own queue's (with a thousand endpoints, waking every queue on every
 * event and every ack made each one cost a thousand transactions), and a fetch that hands nothing out commits
 * nothing (every queue's once-a-second fetch used to write, and so fsync, its position past other queues' events).
 */
import type Database from 'better-sqlite3';
import { matchesSubject } from '../../events/pattern.js';
import {
  QUEUE_NAME,
  type DeliveryItem,
  type DeliveryQueue,
  type DeliveryQueueOptions,
  type DeliveryQueues,
  type DeliveryQueueState,
} from '../delivery-queue.port.js';
import { StoreUnavailableError, type EventStore, type Tail } from '../event-store.port.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbound_queues (
  name TEXT PRIMARY KEY,
  filter TEXT NOT NULL,
  next_seq INTEGER NOT NULL,
  last_handed_out INTEGER NOT NULL DEFAULT 0,
  max_in_flight INTEGER NOT NULL,
  ack_wait_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbound_items (
  queue TEXT NOT NULL,
  seq INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  due_at INTEGER NOT NULL,
  PRIMARY KEY (queue, seq)
) WITHOUT ROWID;
`;

/** Events a queue may skip (none matching its filter) before its stored position is moved past them. */
const RESCAN_LIMIT = 10_000;

interface QueueRow {
  name: string;
  filter: string;
  next_seq: number;
  last_handed_out: number;
  max_in_flight: number;
  ack_wait_ms: number;
}

interface ItemRow {
  seq: number;
  attempts: number;
  subject: string | null;
  time: number | null;
  data: Buffer | null;
}

export interface EmbeddedDeliveryQueuesDeps {
  /** The store's open connection, or undefined while it is closed. */
  db: () => Database.Database | undefined;
  /** The store itself, to be woken by new events. */
  store: Pick<EventStore, 'tail' | 'state'>;
  now?: () => number;
}

export class EmbeddedDeliveryQueues implements DeliveryQueues {
  private prepared?: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /** Queue name → the fetches waiting on it; and each open queue's filter, to wake only the queues an event is for. */
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly filters = new Map<string, string>();
  /** Queue name → the first sequence not yet scanned, when ahead of the stored `next_seq`. */
  private readonly scanned = new Map<string, number>();
  private tail?: Promise<Tail | undefined>;
  private readonly now: () => number;

  constructor(private readonly deps: EmbeddedDeliveryQueuesDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The connection with the tables and the match function in place. */
  private db(): Database.Database {
    const db = this.deps.db();
    if (!db?.open) throw new StoreUnavailableError('embedded event log is not open');
    if (this.prepared !== db) {
      db.exec(SCHEMA);
      db.function('hs_matches', { deterministic: true }, (pattern: unknown, subject: unknown) =>
        matchesSubject(String(pattern), String(subject)) ? 1 : 0,
      );
      this.prepared = db;
      this.statements.clear();
    }
    return db;
  }

  /** A statement of the current connection, prepared once: a thousand queues' fetches each second add up. */
  private stmt(sql: string): Database.Statement {
    const db = this.db();
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = db.prepare(sql)));
    return st;
  }

  /** One tail for every queue: a new event wakes the waiting fetches of the queues it matches (they re-read). */
  private ensureTail(): void {
    this.tail ??= (async () => {
      const { lastSeq } = await this.deps.store.state();
      return this.deps.store.tail(lastSeq + 1, (event) => {
        for (const [name, filter] of this.filters) if (matchesSubject(filter, event.subject)) this.wake(name);
      });
    })().catch(() => {
      this.tail = undefined; // retried by the next fetch
      return undefined;
    });
  }

  private wake(name: string): void {
    const set = this.waiters.get(name);
    if (set) for (const w of [...set]) w();
  }

  async open(name: string, options: DeliveryQueueOptions): Promise<DeliveryQueue> {
    if (!QUEUE_NAME.test(name)) throw new RangeError(`invalid queue name ${JSON.stringify(name)}`);
    this.stmt(
      `INSERT INTO outbound_queues (name, filter, next_seq, max_in_flight, ack_wait_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET filter = excluded.filter, max_in_flight = excluded.max_in_flight,
       ack_wait_ms = excluded.ack_wait_ms`,
    ).run(name, options.filter, Math.max(1, options.startSeq), options.maxInFlight, options.ackWaitMs);
    this.filters.set(name, options.filter);
    this.ensureTail();
    return new EmbeddedQueue(name, this);
  }

  async delete(name: string): Promise<void> {
    const db = this.db();
    db.transaction(() => {
      this.stmt('DELETE FROM outbound_items WHERE queue = ?').run(name);
      this.stmt('DELETE FROM outbound_queues WHERE name = ?').run(name);
    })();
    this.filters.delete(name);
    this.scanned.delete(name);
    this.wake(name); // a fetch waiting on it returns (and finds it gone)
  }

  async list(prefix: string): Promise<string[]> {
    const rows = this.stmt('SELECT name FROM outbound_queues ORDER BY name').all() as { name: string }[];
    return rows.map((r) => r.name).filter((n) => n.startsWith(prefix));
  }

  // ---- used by EmbeddedQueue ----

  /** Hands out what is due now: retries first (in sequence order), then new events up to maxInFlight. */
  takeDue(name: string, max: number): { items: DeliveryItem[]; nextDueAt: number | null } {
    const db = this.db();
    const now = this.now();
    const items: DeliveryItem[] = [];
    let nextDueAt: number | null = null;
    db.transaction(() => {
      const q = this.stmt('SELECT * FROM outbound_queues WHERE name = ?').get(name) as QueueRow | undefined;
      if (!q) throw new StoreUnavailableError(`delivery queue ${name} does not exist`);
      const due = this.stmt(
        `SELECT i.seq, i.attempts, e.subject, e.time, e.data FROM outbound_items i LEFT JOIN events e ON e.seq = i.seq
           WHERE i.queue = ? AND i.due_at <= ? ORDER BY i.seq LIMIT ?`,
      ).all(name, now, max) as ItemRow[];
      const lease = this.stmt('UPDATE outbound_items SET attempts = ?, due_at = ? WHERE queue = ? AND seq = ?');
      const remove = this.stmt('DELETE FROM outbound_items WHERE queue = ? AND seq = ?');
      for (const r of due) {
        if (r.data === null) {
          remove.run(name, r.seq); // gone by retention: nothing left to send
          continue;
        }
        lease.run(r.attempts + 1, now + q.ack_wait_ms, name, r.seq);
        items.push(this.item(name, r, r.attempts + 1));
      }
      const held = (this.stmt('SELECT count(*) AS n FROM outbound_items WHERE queue = ?').get(name) as { n: number }).n;
      const room = Math.min(q.max_in_flight - held, max - items.length);
      if (room > 0) {
        const from = Math.max(q.next_seq, this.scanned.get(name) ?? 0);
        const fresh = this.stmt(
          'SELECT seq, subject, time, data FROM events WHERE seq >= ? AND hs_matches(?, subject) ORDER BY seq LIMIT ?',
        ).all(from, q.filter, room) as Omit<ItemRow, 'attempts'>[];
        const insert = this.stmt('INSERT INTO outbound_items (queue, seq, attempts, due_at) VALUES (?, ?, 1, ?)');
        for (const r of fresh) {
          insert.run(name, r.seq, now + q.ack_wait_ms);
          items.push(this.item(name, { ...r, attempts: 0 }, 1));
        }
        // Past the last match found; or, when fewer than asked matched, past everything stored now.
        const last = fresh.length ? fresh[fresh.length - 1].seq : 0;
        const scannedTo =
          fresh.length === room
            ? last
            : (this.stmt('SELECT last_seq FROM meta WHERE id = 1').get() as { last_seq: number }).last_seq;
        // Written with a hand-out (a write anyway), or when a restart would otherwise rescan many events; else the
        // position past events the filter skipped is kept in memory, so an idle queue's fetch writes nothing.
        this.scanned.set(name, scannedTo + 1);
        if (fresh.length || scannedTo + 1 - q.next_seq >= RESCAN_LIMIT) {
          this.stmt(
            'UPDATE outbound_queues SET next_seq = max(next_seq, ?), last_handed_out = max(last_handed_out, ?) WHERE name = ?',
          ).run(scannedTo + 1, last, name);
        }
      }
      const next = this.stmt('SELECT min(due_at) AS t FROM outbound_items WHERE queue = ?').get(name) as {
        t: number | null;
      };
      nextDueAt = next.t;
    })();
    return { items, nextDueAt };
  }

  private item(name: string, r: Omit<ItemRow, 'attempts'> & { attempts: number }, attempt: number): DeliveryItem {
    const data = r.data as Buffer;
    const settle =
      (sql: string, ...args: unknown[]) =>
      async () => {
        this.stmt(sql).run(...args);
        this.wake(name); // a slot may have opened
      };
    return {
      seq: r.seq,
      subject: r.subject as string,
      time: r.time as number,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      attempt,
      ack: settle('DELETE FROM outbound_items WHERE queue = ? AND seq = ?', name, r.seq),
      drop: settle('DELETE FROM outbound_items WHERE queue = ? AND seq = ?', name, r.seq),
      retry: async (delayMs: number) => {
        this.stmt('UPDATE outbound_items SET due_at = ? WHERE queue = ? AND seq = ?').run(
          this.now() + Math.max(0, delayMs),
          name,
          r.seq,
        );
        this.wake(name);
      },
    };
  }

  state(name: string): DeliveryQueueState {
    const q = this.stmt('SELECT * FROM outbound_queues WHERE name = ?').get(name) as QueueRow | undefined;
    if (!q) throw new StoreUnavailableError(`delivery queue ${name} does not exist`);
    const inFlight = (this.stmt('SELECT count(*) AS n FROM outbound_items WHERE queue = ?').get(name) as { n: number })
      .n;
    const backlog = (
      this.stmt('SELECT count(*) AS n FROM events WHERE seq >= ? AND hs_matches(?, subject)').get(
        Math.max(q.next_seq, this.scanned.get(name) ?? 0),
        q.filter,
      ) as {
        n: number;
      }
    ).n;
    return { backlog, inFlight, lastHandedOut: q.last_handed_out };
  }

  /** Resolves on the queue's next wake-up (a matching new event, a settled item, a delete) or after `ms`. */
  sleep(name: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(name);
      if (!set) this.waiters.set(name, (set = new Set()));
      const waiting = set;
      const done = () => {
        clearTimeout(timer);
        waiting.delete(done);
        if (waiting.size === 0 && this.waiters.get(name) === waiting) this.waiters.delete(name);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      waiting.add(done);
    });
  }
}

class EmbeddedQueue implements DeliveryQueue {
  constructor(
    private readonly name: string,
    private readonly owner: EmbeddedDeliveryQueues,
  ) {}

  async fetch(max: number, waitMs: number): Promise<DeliveryItem[]> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const { items, nextDueAt } = this.owner.takeDue(this.name, max);
      const left = deadline - Date.now();
      if (items.length || left <= 0) return items;
      const untilDue = nextDueAt === null ? left : Math.max(1, nextDueAt - Date.now());
      await this.owner.sleep(this.name, Math.min(left, untilDue));
    }
  }

  async state(): Promise<DeliveryQueueState> {
    return this.owner.state(this.name);
  }
}
