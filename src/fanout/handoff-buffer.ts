/**
 * A subscription's hand-off buffer: the live events that arrive while it catches up, held so that the switch
 * to live needs no second read. Bounded in events and in bytes; past either bound it forgets everything and
 * stops holding, and the catch-up reaches further (to the head at its restart) instead. Memory per client thus
 * stays bounded and nothing is lost.
 */
import type { Delivery } from './fanout.types.js';

export class HandoffBuffer {
  private items: Delivery[] = [];
  /** Size of `items`, in UTF-16 units of the envelopes' JSON (bytes, for ASCII JSON). */
  private bytes = 0;
  private holding = true;
  private fromSeq: number;

  constructor(
    private readonly maxEvents: number,
    private readonly maxBytes: number,
    /** The head when holding began: every live event after it reaches the buffer. */
    from: number,
  ) {
    this.fromSeq = from;
  }

  /** False after an overflow or drop(), until restart(). */
  get active(): boolean {
    return this.holding;
  }

  /** The head when holding (re)started: the catch-up must reach it before the buffer can be flushed. */
  get from(): number {
    return this.fromSeq;
  }

  get length(): number {
    return this.items.length;
  }

  /** Holds one live event; on overflow forgets the buffer instead. Does nothing while not active. */
  hold(d: Delivery): void {
    if (!this.holding) return;
    if (this.items.length >= this.maxEvents || this.bytes + d.json.length > this.maxBytes) {
      this.drop();
      return;
    }
    this.items.push(d);
    this.bytes += d.json.length;
  }

  /** Holds again, empty, from the given head on. */
  restart(from: number): void {
    this.items = [];
    this.bytes = 0;
    this.holding = true;
    this.fromSeq = from;
  }

  drop(): void {
    this.items = [];
    this.bytes = 0;
    this.holding = false;
  }

  /** The held events, in order; the buffer is left dropped. */
  take(): Delivery[] {
    const items = this.items;
    this.drop();
    return items;
  }
}
