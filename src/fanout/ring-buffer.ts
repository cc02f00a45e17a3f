/**
 * The hub's memory of its most recent live events. The live tap is gap-free, so the ring holds a contiguous
 * run of sequences and an entry is found by arithmetic, not search.
 */
import type { Delivery } from './fanout.types.js';

export class RingBuffer {
  private readonly slots: (Delivery | undefined)[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.slots = new Array<Delivery | undefined>(Math.max(0, capacity));
  }

  get size(): number {
    return this.count;
  }

  /** Oldest sequence held; undefined when empty. */
  get minSeq(): number | undefined {
    return this.count === 0 ? undefined : (this.slots[this.start] as Delivery).seq;
  }

  /** Appends the next event; its seq must follow the newest one (the caller clears the ring on a jump). */
  push(d: Delivery): void {
    if (this.capacity === 0) return;
    if (this.count > 0) {
      const last = this.slots[(this.start + this.count - 1) % this.capacity] as Delivery;
      if (d.seq !== last.seq + 1) throw new Error(`ring needs contiguous seqs: ${last.seq} then ${d.seq}`);
    }
    if (this.count < this.capacity) {
      this.slots[(this.start + this.count) % this.capacity] = d;
      this.count++;
    } else {
      this.slots[this.start] = d;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  /** True when every event after `afterSeq` (up to the newest) is in the ring. */
  covers(afterSeq: number): boolean {
    const min = this.minSeq;
    return min !== undefined && afterSeq >= min - 1;
  }

  /** The event at seq, if held. */
  get(seq: number): Delivery | undefined {
    const min = this.minSeq;
    if (min === undefined) return undefined;
    const off = seq - min;
    if (off < 0 || off >= this.count) return undefined;
    return this.slots[(this.start + off) % this.capacity];
  }

  /**
   * Adds older events in front (a warm-up read at start). `older` must be contiguous and end right before the
   * oldest held event (or anywhere, when the ring is empty). Keeps the newest `capacity` events.
   */
  prependOlder(older: readonly Delivery[]): void {
    if (older.length === 0 || this.capacity === 0) return;
    for (let i = 1; i < older.length; i++) {
      if (older[i].seq !== older[i - 1].seq + 1) throw new Error('prependOlder needs contiguous seqs');
    }
    const min = this.minSeq;
    if (min !== undefined && older[older.length - 1].seq !== min - 1)
      throw new Error('prependOlder must end before minSeq');
    const current: Delivery[] = [];
    for (let i = 0; i < this.count; i++) current.push(this.slots[(this.start + i) % this.capacity] as Delivery);
    const all = older.concat(current).slice(-this.capacity);
    this.clear();
    for (let i = 0; i < all.length; i++) this.slots[i] = all[i];
    this.count = all.length;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.start = 0;
    this.count = 0;
  }
}
