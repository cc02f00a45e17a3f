/**
 * A DeliverySink for tests: records what the hub sent (in order, gaps included) and models a transport's
 * write queue. While paused every send stays in the backlog; resume() flushes it and fires drain callbacks.
 */
import type { Delivery, DeliverySink, GapNotice } from '../../src/fanout/fanout.types.js';

export type SinkRecord =
  { kind: 'event'; delivery: Delivery; tag?: string } | { kind: 'gap'; notice: GapNotice; tag?: string };

export class FakeSink implements DeliverySink {
  readonly records: SinkRecord[] = [];
  /** Highest backlog reached. */
  maxBacklog = 0;
  private pending = 0;
  /** Bytes (envelope JSON length) of the pending sends. */
  private pendingBytes = 0;
  /** Highest byte backlog reached. */
  maxBacklogBytes = 0;
  /** How often the hub asked this sink's connection to close as a slow consumer. */
  slowConsumerCalls = 0;
  private paused = false;
  private drainCallbacks: (() => void)[] = [];
  /** Extra backlog added to the real one (simulates other traffic on the same socket). */
  extraBacklog = 0;

  send(delivery: Delivery): void {
    this.records.push({ kind: 'event', delivery });
    if (this.paused) {
      this.pending++;
      this.pendingBytes += delivery.json.length;
      this.maxBacklog = Math.max(this.maxBacklog, this.backlog());
      this.maxBacklogBytes = Math.max(this.maxBacklogBytes, this.pendingBytes);
    }
  }

  backlogBytes(): number {
    return this.pendingBytes;
  }

  slowConsumer(): void {
    this.slowConsumerCalls++;
  }

  gap(notice: GapNotice): void {
    this.records.push({ kind: 'gap', notice });
  }

  backlog(): number {
    return this.pending + this.extraBacklog;
  }

  onceDrained(cb: () => void): void {
    if (this.backlog() === 0) setImmediate(cb);
    else this.drainCallbacks.push(cb);
  }

  /**
   * Another subscription's view of the same socket: its own records tag, the shared backlog.
   * (Several subscriptions of one connection write into one transport queue.)
   */
  channel(tag: string): DeliverySink {
    return {
      send: (delivery) => {
        this.send(delivery);
        (this.records[this.records.length - 1] as SinkRecord).tag = tag;
      },
      gap: (notice) => this.records.push({ kind: 'gap', notice, tag }),
      backlog: () => this.backlog(),
      backlogBytes: () => this.backlogBytes(),
      owner: this,
      slowConsumer: () => this.slowConsumer(),
      onceDrained: (cb) => this.onceDrained(cb),
    };
  }

  /** Deliveries recorded through channel(tag). */
  seqsOf(tag: string): number[] {
    return this.records.flatMap((r) => (r.kind === 'event' && r.tag === tag ? [r.delivery.seq] : []));
  }

  /** The client stops reading: sends pile up in the backlog. */
  pause(): void {
    this.paused = true;
  }

  /** The client reads everything: backlog flushed, drain callbacks fire. */
  resume(): void {
    this.paused = false;
    this.pending = 0;
    this.pendingBytes = 0;
    this.extraBacklog = 0;
    this.fireDrained();
  }

  private fireDrained(): void {
    if (this.backlog() !== 0) return;
    const cbs = this.drainCallbacks;
    this.drainCallbacks = [];
    for (const cb of cbs) cb();
  }

  get deliveries(): Delivery[] {
    return this.records.flatMap((r) => (r.kind === 'event' ? [r.delivery] : []));
  }

  get gaps(): GapNotice[] {
    return this.records.flatMap((r) => (r.kind === 'gap' ? [r.notice] : []));
  }

  seqs(): number[] {
    return this.deliveries.map((d) => d.seq);
  }
}

/** Polls a condition until it holds (or throws after the deadline). Yields to timers and I/O between polls. */
export async function waitFor(cond: () => boolean, what = 'condition', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Lets pending promise callbacks and immediates run (n rounds). */
export async function ticks(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}
