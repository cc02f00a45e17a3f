/**
 * The hub's memory of its most recent live events. The live tap is gap-free, so the ring holds a contiguous
 * run of sequences and an entry is found by arithmetic, not search.
 *
 * It also keeps the seqs it holds by subject, so a resume that wants a few subjects out of many (a client on
 * one topic of hundreds) visits only its own events instead of testing every entry since its cursor: in a
 * reconnect storm every client resumes at once, each from a cursor the further back the longer the storm.
 */
import type { Delivery } from './fanout.types.js';

/** The seqs of one subject held in the ring, oldest first (`seqs[head…]`; the front is cut as the ring evicts). */
interface SubjectSeqs {
  seqs: number[];
  head: number;
}

/** At most this many subjects' lists are merged for one resume; more, and the entries are scanned instead. */
const MAX_MERGED_SUBJECTS = 8;

export class RingBuffer {
  private readonly slots: (Delivery | undefined)[];
  private start = 0;
  private count = 0;
  private readonly bySubject = new Map<string, SubjectSeqs>();

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
      this.forget(this.slots[this.start] as Delivery);
      this.slots[this.start] = d;
      this.start = (this.start + 1) % this.capacity;
    }
    this.index(d);
  }

  /**
   * The held events with seq in (after, until] whose subject passes `matches`, in seq order; null when the
   * ring does not hold all of (after, until], or when looking up by subject would cost more than testing
   * every entry (many distinct subjects, or a pattern that matches many of them): then scan with get().
   */
  matching(after: number, until: number, matches: (subject: string) => boolean): Delivery[] | null {
    const min = this.minSeq;
    if (min === undefined || after + 1 < min || until > min + this.count - 1) return null;
    if (until <= after) return [];
    // Walking the subjects must stay well under scanning the entries.
    if (this.bySubject.size * 4 > until - after) return null;
    const lists: SubjectSeqs[] = [];
    for (const [subject, list] of this.bySubject) {
      if (!matches(subject)) continue;
      if (lists.length === MAX_MERGED_SUBJECTS) return null;
      lists.push(list);
    }
    const out: Delivery[] = [];
    for (const list of lists) {
      const { seqs } = list;
      for (let i = firstAbove(seqs, list.head, after); i < seqs.length && seqs[i] <= until; i++) {
        out.push(this.slots[(this.start + seqs[i] - min) % this.capacity] as Delivery);
      }
    }
    if (lists.length > 1) out.sort((a, b) => a.seq - b.seq);
    return out;
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
    for (let i = 0; i < all.length; i++) {
      this.slots[i] = all[i];
      this.index(all[i]);
    }
    this.count = all.length;
  }

  clear(): void {
    this.slots.fill(undefined);
    this.start = 0;
    this.count = 0;
    this.bySubject.clear();
  }

  private index(d: Delivery): void {
    const list = this.bySubject.get(d.subject);
    if (list) list.seqs.push(d.seq);
    else this.bySubject.set(d.subject, { seqs: [d.seq], head: 0 });
  }

  /** The oldest entry leaves the ring: it is the first of its subject's list. */
  private forget(d: Delivery): void {
    const list = this.bySubject.get(d.subject);
    if (!list) return;
    list.head++;
    if (list.head >= list.seqs.length) {
      this.bySubject.delete(d.subject);
    } else if (list.head >= 1024 && list.head * 2 >= list.seqs.length) {
      list.seqs = list.seqs.slice(list.head);
      list.head = 0;
    }
  }
}

/** Index of the first seq above `after` in seqs[from…] (ascending), or seqs.length. */
function firstAbove(seqs: readonly number[], from: number, after: number): number {
  let lo = from;
  let hi = seqs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (seqs[mid] <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
