/**
 * Diagnostics only: per live event, when the tap got it (against the store's timestamp), when routing to every
 * subscription ended and when the turn's writes ended, with the process CPU time used from its arrival to that end,
 * plus GC pauses and their kind (perf_hooks' NODE_PERFORMANCE_GC_*: 1 minor, 4 major, 8 incremental, 16 weak
 * callbacks). A turn whose wall time is well above its CPU time waited for a core (the clients its writes woke, or
 * anything else on the machine), not on the gateway's own work. Written as JSON to the file named by
 * HOOKSTREAM_FANOUT_TRACE (+ `.<pid>`) every 2 s and at exit. Off (null, nothing on the hot path but a null check) unless
 * that variable is set.
 */
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const now = (): number => performance.timeOrigin + performance.now();

class FanoutTrace {
  /**
   * Per event: seq, store time, tap arrival, routing end, end of the turn's writes (ms since the epoch), and the
   * process CPU ms (user + system, all threads) from the arrival to that end; until the turn ends, the last field
   * holds the process CPU µs at arrival.
   */
  private readonly rows: number[][] = [];
  /** Per GC: start (ms since the epoch), duration in ms, kind. */
  private readonly gcs: number[][] = [];
  private pending: number[][] = [];
  private scheduled = false;

  constructor(private readonly file: string) {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? 0;
        this.gcs.push([performance.timeOrigin + e.startTime, e.duration, kind]);
      }
    }).observe({ entryTypes: ['gc'] });
    const save = () => writeFileSync(this.file, JSON.stringify({ events: this.rows, gc: this.gcs }));
    setInterval(save, 2_000).unref();
    process.once('exit', save);
  }

  arrived(seq: number, storeTimeMs: number): number[] {
    const cpu = process.cpuUsage();
    const row = [seq, storeTimeMs, now(), 0, 0, cpu.user + cpu.system];
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
    const cpu = process.cpuUsage();
    const used = cpu.user + cpu.system;
    for (const row of this.pending) {
      row[4] = t;
      row[5] = (used - row[5]) / 1000;
    }
    this.pending = [];
    this.scheduled = false;
  };
}

const file = process.env.HOOKSTREAM_FANOUT_TRACE;
export const fanoutTrace: FanoutTrace | null = file ? new FanoutTrace(`${file}.${process.pid}`) : null;
