/**
 * The hand-outs this process holds, per queue and event. A queue hands an event out again once its ack wait has run
 * out, and that can be to this very process while its own attempt is still under way (the process was starved, or
 * a store call was slow, for longer than the ack wait). Such a hand-out joins the one held instead of becoming a
 * second request: the holder sends once, using the newest hand-out's attempt number when it is about to send, and
 * settles through the newest hand-out (the delivery the queue now counts). An event acked or dropped here a moment
 * ago and handed out again (the hand-out crossed the ack on the way) is ignored for half an ack wait; should the
 * queue really still hold it, it comes back after a full ack wait and is attempted then.
 *
 * Kept by the worker, not a queue loop: a loop restarted with new options shares the queue with the one stopping.
 */
import type { DeliveryItem } from '../store/delivery-queue.port.js';

export interface Holding {
  readonly queue: string;
  readonly seq: number;
  /** The newest hand-out of the event, and when the fetch that brought it was started. */
  item: DeliveryItem;
  pulledAt: number;
}

const key = (queue: string, seq: number) => `${queue}\u0000${seq}`;

export class InFlightDeliveries {
  private readonly held = new Map<string, Holding>();
  /** Key → until when a hand-out of it is ignored; in insertion order, which is expiry order (one ttl). */
  private readonly settled = new Map<string, number>();

  /** How long an echo of a settled hand-out is ignored: half an ack wait. */
  private readonly settledTtlMs: number;

  constructor(
    private readonly now: () => number,
    /** The queue's ack wait: a hand-out held longer than this has been handed out again (see current()). */
    private readonly ackWaitMs: number,
  ) {
    this.settledTtlMs = ackWaitMs / 2;
  }

  /**
   * A hand-out: a new holding for the caller to attempt, or null when it joined one held here (or is the echo of
   * one settled here a moment ago); the caller then leaves it alone.
   */
  claim(queue: string, item: DeliveryItem, pulledAt: number): Holding | null {
    const k = key(queue, item.seq);
    const now = this.now();
    for (const [s, until] of this.settled) {
      if (until > now) break;
      this.settled.delete(s);
    }
    if (this.settled.has(k)) return null;
    const cur = this.held.get(k);
    if (cur) {
      cur.item = item;
      cur.pulledAt = pulledAt;
      return null;
    }
    const h: Holding = { queue, seq: item.seq, item, pulledAt };
    this.held.set(k, h);
    return h;
  }

  /** The holder is done with it (settled or left to the queue). */
  release(h: Holding): void {
    const k = key(h.queue, h.seq);
    if (this.held.get(k) === h) this.held.delete(k);
  }

  /**
   * The item an attempt works with: the hand-out current now (its attempt number), settled through whichever is the
   * newest when the outcome is known.
   */
  current(h: Holding): DeliveryItem {
    const done = () => {
      const k = key(h.queue, h.seq);
      this.settled.delete(k);
      this.settled.set(k, this.now() + this.settledTtlMs);
    };
    return {
      ...h.item,
      ack: async () => {
        await h.item.ack();
        done();
      },
      // After a retry the queue hands the event out again on purpose: that hand-out is the next attempt, not one
      // to join to this holding (which the holder gives up only once its outcome is recorded).
      retry: (delayMs: number) => {
        this.release(h);
        // Held past the ack wait (this process was stopped or starved during the attempt): the queue has handed the
        // event out again, maybe to another process that is attempting it now. Leave it to the queue. A retry sent now
        // is not ignored as stale: nats-server applies it to the newer hand-out, which is then handed out once more
        // after the delay even when its holder delivered and acked it meanwhile (a second 2xx at the receiver).
        if (this.now() - h.pulledAt >= this.ackWaitMs) return Promise.resolve();
        return h.item.retry(delayMs);
      },
      drop: async () => {
        await h.item.drop();
        done();
      },
    };
  }

  /** Holdings now (for tests and diagnostics). */
  get size(): number {
    return this.held.size;
  }
}
