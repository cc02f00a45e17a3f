/**
 * Diagnostics only: per live event, when the tap got it (against the store's timestamp), when routing to every
 * subscription ended and when the turn's writes ended, plus GC pauses; written as JSON to the file named by
 * HOOKSTREAM_FANOUT_TRACE (+ `.<pid>`) every 2 s and at exit. Off (null, nothing on the hot path but a null check) unless
 * that variable is set.
 */
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const now = (): number => performance.timeOrigin + performance.now();

class FanoutTrace {
  /** Per event: seq, store time, tap arrival, routing end, end of the turn's writes (ms since the epoch). */
  private readonly rows: number[][] = [];
  private readonly gcs: number[][] = [];
  private pending: number[][] = [];
  private scheduled = false;

  constructor(private readonly file: string) {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) this.gcs.push([performance.timeOrigin + e.startTime, e.duration]);
    }).observe({ entryTypes: ['gc'] });
    const save = () => writeFileSync(this.file, JSON.stringify({ events: this.rows, gc: this.gcs }));
    setInterval(save, 2_000).unref();
    process.once('exit', save);
  }

  arrived(seq: number, storeTimeMs: number): number[] {
    const row = [seq, storeTimeMs, now(), 0, 0];
    this.rows.push(row);
    return row;
  }

  routed(row: number[]): void {
    row[3] = now();
    this.pending.push(row);
    // Queued after the tick batcher's flush, which the routing scheduled first.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushed);
    }
  }

  private readonly flushed = (): void => {
    const t = now();
    for (const row of this.pending) row[4] = t;
    this.pending = [];
    this.scheduled = false;
  };
}

const file = process.env.HOOKSTREAM_FANOUT_TRACE;
export const fanoutTrace: FanoutTrace | null = file ? new FanoutTrace(`${file}.${process.pid}`) : null;
