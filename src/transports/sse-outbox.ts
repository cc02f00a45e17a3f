/**
 * What one SSE response is sent: frames queued and written once per event-loop turn (tick-batcher.ts) or
 * when a corked catch-up page ends, as one string (one write, one callback) instead of a write per event.
 * The backlog the hub bounds counts frames not yet flushed to the socket, queued ones included.
 */
import type { ServerResponse } from 'node:http';
import type { DeliverySink, GapNotice, Delivery } from '../fanout/fanout.types.js';
import { sseDeliveryFrame } from './delivery-encoding.js';
import { sseFrame } from './sse-frame.js';
import { type Flushable, tickBatcher } from './tick-batcher.js';

export class SseOutbox implements Flushable, DeliverySink {
  /** Frames handed to the response whose write callback has not run yet. */
  private written = 0;
  private queued: string[] = [];
  private marked = false;
  private depth = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly res: ServerResponse) {}

  /** Queues any frame (deliveries, notices, comments) behind what is queued already. */
  write(frame: string): void {
    this.queued.push(frame);
    if (this.depth === 0 && !this.marked) {
      this.marked = true;
      tickBatcher.mark(this);
    }
  }

  /** Writes every queued frame now. Call before ending the response. */
  flush(): void {
    this.marked = false;
    const frames = this.queued;
    if (frames.length === 0) return;
    this.queued = [];
    const { res } = this;
    if (res.writableEnded || res.destroyed) return;
    const n = frames.length;
    this.written += n;
    res.write(n === 1 ? frames[0] : frames.join(''), () => {
      this.written -= n;
      if (this.written === 0 && this.waiters.length > 0) for (const wake of this.waiters.splice(0)) wake();
    });
  }

  // ---- DeliverySink ----

  send(d: Delivery): void {
    this.write(sseDeliveryFrame(d));
  }

  gap(n: GapNotice): void {
    this.write(sseFrame({ event: 'gap', data: JSON.stringify(n) }));
  }

  backlog(): number {
    return this.written + this.queued.length;
  }

  onceDrained(cb: () => void): void {
    if (this.backlog() === 0) setImmediate(cb);
    else this.waiters.push(cb);
  }

  cork(): void {
    this.depth++;
  }

  uncork(): void {
    if (this.depth > 0 && --this.depth === 0) this.flush();
  }
}
