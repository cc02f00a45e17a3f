/**
 * One process-wide timer for a periodic job on every open connection (an SSE keep-alive comment), instead of
 * a setInterval per connection: at tens of thousands of idle connections each timer, its closure and its
 * handle were a measurable share of a connection's memory. The timer runs only while something is enrolled,
 * and never keeps the process alive by itself.
 *
 * Members are spread over SLICES groups, and the timer visits one group every `everyMs / SLICES`, so each member
 * is still pinged once every `everyMs`, but never all at once: a keep-alive written to a thousand streams in one
 * go held the event loop for tens of milliseconds, and every live event that arrived meanwhile waited for it.
 */
export interface Pinged {
  ping(): void;
}

/** Groups the members are spread over; one is visited per tick. */
const SLICES = 15;

export class SharedTicker<T extends Pinged> {
  private readonly slices: Set<T>[] = Array.from({ length: SLICES }, () => new Set<T>());
  private count = 0;
  /** The group the next member joins (round robin, so the groups stay even), and the group the next tick visits. */
  private joinAt = 0;
  private visitAt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly everyMs: number) {}

  get size(): number {
    return this.count;
  }

  add(member: T): void {
    for (const slice of this.slices) if (slice.has(member)) return;
    this.slices[this.joinAt].add(member);
    this.joinAt = (this.joinAt + 1) % SLICES;
    this.count++;
    if (this.timer) return;
    this.timer = setInterval(this.tick, Math.max(1, Math.floor(this.everyMs / SLICES)));
    this.timer.unref();
  }

  delete(member: T): void {
    for (const slice of this.slices) {
      if (!slice.delete(member)) continue;
      this.count--;
      break;
    }
    if (this.count > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Every member (a copy: a member may leave while it is visited). */
  list(): T[] {
    const out: T[] = [];
    for (const slice of this.slices) for (const member of slice) out.push(member);
    return out;
  }

  private readonly tick = (): void => {
    const slice = this.slices[this.visitAt];
    this.visitAt = (this.visitAt + 1) % SLICES;
    for (const member of slice) member.ping();
  };
}
