/**
 * Live tails on the embedded log, and the registry of a store's running tails. A tail catches up from the table a
 * page per tick, then goes live: the appender hands it each commit (committed()) straight from memory, in order.
 */
import type { StoredEvent, Tail, TailHandler } from '../event-store.port.js';
import type { EmbeddedDatabase } from './embedded-database.js';
import { CHUNK, toEvent, type EmbeddedStoreLogger, type EventRow } from './embedded-util.js';

interface TailState {
  handler: TailHandler;
  /** Next sequence this tail wants. */
  next: number;
  /** False while catching up from the table: live commits are then read back from disk instead. */
  live: boolean;
  stopped: boolean;
}

export class EmbeddedTails {
  private readonly tails = new Set<TailState>();

  constructor(
    private readonly database: EmbeddedDatabase,
    private readonly logger: EmbeddedStoreLogger,
  ) {}

  start(fromSeq: number, handler: TailHandler): Tail {
    this.database.statements();
    const t: TailState = { handler, next: Math.max(1, fromSeq), live: false, stopped: false };
    this.tails.add(t);
    // Catch up from the table a page per tick, then go live in the same synchronous step that saw the end,
    // so no commit falls between the two: no gap, no duplicate.
    const step = () => {
      if (t.stopped) return;
      let rows: EventRow[];
      try {
        rows = this.database.statements().page.all(t.next, CHUNK) as EventRow[];
      } catch (err) {
        this.logger.error({ err }, 'embedded event log: tail catch-up failed; tail stopped');
        t.stopped = true;
        this.tails.delete(t);
        return;
      }
      for (const r of rows) {
        if (t.stopped) return;
        t.next = r.seq + 1;
        this.deliver(t, toEvent(r));
      }
      if (rows.length < CHUNK) t.live = true;
      else setImmediate(step);
    };
    setImmediate(step);
    return {
      stop: async () => {
        t.stopped = true;
        this.tails.delete(t);
      },
    };
  }

  /** A commit's new events (in seq order), for every tail that is live. */
  committed(stored: readonly StoredEvent[]): void {
    for (const t of this.tails) {
      if (!t.live) continue;
      for (const ev of stored) {
        if (t.stopped) break;
        if (ev.seq < t.next) continue;
        t.next = ev.seq + 1;
        this.deliver(t, ev);
      }
    }
  }

  stopAll(): void {
    for (const t of this.tails) t.stopped = true;
    this.tails.clear();
  }

  private deliver(t: TailState, ev: StoredEvent): void {
    try {
      t.handler(ev);
    } catch (err) {
      // A throwing subscriber must not break the commit path or other tails.
      this.logger.error({ err, seq: ev.seq }, 'embedded event log: tail handler threw');
    }
  }
}
