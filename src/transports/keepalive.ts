/**
 * One process-wide timer for a periodic job on every open connection (an SSE keep-alive comment), instead of
 * a setInterval per connection: at tens of thousands of idle connections each timer, its closure and its
 * handle were a measurable share of a connection's memory. The timer runs only while something is enrolled,
 * and never keeps the process alive by itself.
 */
export interface Pinged {
  ping(): void;
}

export class SharedTicker<T extends Pinged> {
  private readonly members = new Set<T>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly everyMs: number) {}

  get size(): number {
    return this.members.size;
  }

  add(member: T): void {
    this.members.add(member);
    if (this.timer) return;
    this.timer = setInterval(this.tick, this.everyMs);
    this.timer.unref();
  }

  delete(member: T): void {
    this.members.delete(member);
    if (this.members.size > 0 || !this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Every member, in the order enrolled (a copy: a member may leave while it is visited). */
  list(): T[] {
    return [...this.members];
  }

  private readonly tick = (): void => {
    for (const member of this.members) member.ping();
  };
}
