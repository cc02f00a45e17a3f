import { tickBatcher, type Flushable } from './tick-batcher.js';

/** How long a client closed as a slow consumer has to read its closing notice before the connection is cut. */
export const CLOSING_GRACE_MS = 5_000;

/**
 * A connection's outgoing queue, shared by both transports: items queue up and are written at the end of the
 * turn (or when the outermost `uncork()` ends a catch-up page), and the backlog the fan-out hub bounds counts
 * both the queue and what the connection has not flushed yet, in items and in bytes. A subclass writes a batch and
 * says how much of it is still in transit; it calls wake() whenever that may have dropped to 0.
 *
 * When the hub gives up on a client that stopped reading (`slowConsumer()`), the transport's handler says why and
 * ends the connection; if the client has still not read that by CLOSING_GRACE_MS, the connection is cut, so
 * what it held is freed either way.
 */
/** What the hub's slow-consumer verdict calls: the connection, which says why and ends itself. */
export interface SlowConsumerCloser {
  closeSlowConsumer(): void;
}

export abstract class TurnOutbox<T> implements Flushable {
  private queued: T[] = [];
  private queuedBytes = 0;
  private onSlow: SlowConsumerCloser | (() => void) | undefined;
  /** Whether the tick batcher will flush us this turn. */
  private marked = false;
  private depth = 0;
  private waiters: (() => void)[] | null = null;

  /** Items handed to the connection that it has not flushed to its socket yet. */
  protected abstract inTransit(): number;
  /** Bytes of those items. */
  protected abstract bytesInTransit(): number;
  /** An item's size in bytes (its text's length: exact for ASCII JSON). */
  protected abstract sizeOf(item: T): number;
  /** Cuts the connection at once (the client did not read its closing notice in time). */
  protected abstract abort(): void;
  /** Hands a batch to the connection, in order. */
  protected abstract writeOut(items: T[]): void;
  /** Someone waits and the backlog is not 0 yet: make sure wake() is called again (by default, writes do). */
  protected watchDrain(): void {}

  /** Writes every queued item now. Anything else sent on the connection must call this first. */
  flush(): void {
    this.marked = false;
    const items = this.queued;
    if (items.length === 0) return;
    this.queued = [];
    this.queuedBytes = 0;
    this.writeOut(items);
  }

  backlog(): number {
    return this.inTransit() + this.queued.length;
  }

  backlogBytes(): number {
    return this.bytesInTransit() + this.queuedBytes;
  }

  /**
   * What to run when the hub closes this connection as a slow consumer: say why and end it. A connection object
   * (its `closeSlowConsumer()`) costs nothing per connection; a function is kept as given.
   */
  onSlowConsumer(handler: SlowConsumerCloser | (() => void)): void {
    this.onSlow = handler;
  }

  /** The hub gave up on this client: the handler closes the connection; it is cut if still open after a grace. */
  slowConsumer(): void {
    const handler = this.onSlow;
    if (!handler) return;
    this.onSlow = undefined;
    if (typeof handler === 'function') handler();
    else handler.closeSlowConsumer();
    setTimeout(() => this.abort(), CLOSING_GRACE_MS).unref();
  }

  private idle(): boolean {
    return this.backlog() === 0 && this.backlogBytes() === 0;
  }

  onceDrained(cb: () => void): void {
    if (this.idle()) return void setImmediate(cb);
    (this.waiters ??= []).push(cb);
    this.watchDrain();
  }

  cork(): void {
    this.depth++;
  }

  uncork(): void {
    if (this.depth > 0 && --this.depth === 0) this.flush();
  }

  protected enqueue(item: T): void {
    this.queued.push(item);
    this.queuedBytes += this.sizeOf(item);
    if (this.depth === 0 && !this.marked) {
      this.marked = true;
      tickBatcher.mark(this);
    }
  }

  protected wake(): void {
    const waiters = this.waiters;
    if (!waiters) return;
    if (!this.idle()) return this.watchDrain();
    this.waiters = null;
    for (const cb of waiters) cb();
  }
}
