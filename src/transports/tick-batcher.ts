/**
 * Writes of one event-loop turn, grouped per connection. When the live tap hands over several events in one
 * turn (it does as soon as the gateway is busy: they arrive in one read from NATS), a connection gets them
 * in one socket write instead of one write each. The write happens in the same turn's check phase
 * (setImmediate), so an idle gateway adds microseconds of latency, and a saturated one spends its time on
 * fewer, larger writes: the syscall per write per client was half of a 1,000-client fan-out's CPU.
 */
export interface Flushable {
  flush(): void;
}

class TickBatcher {
  private dirty: Flushable[] = [];
  private scheduled = false;

  /** Flush `f` at the end of this turn. The caller marks each connection once per turn. */
  mark(f: Flushable): void {
    this.dirty.push(f);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.run);
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const list = this.dirty;
    this.dirty = [];
    for (const f of list) f.flush();
  };
}

/** One per process: every connection's turn ends together. */
export const tickBatcher = new TickBatcher();
