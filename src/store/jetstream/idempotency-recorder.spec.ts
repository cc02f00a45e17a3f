/** The background writer of idempotency records, against a fake bucket (the real one: store-jetstream e2e). */
import { describe, expect, it } from '@jest/globals';
import { IdempotencyRecorder, type RecordSink } from './idempotency-recorder.js';

function memoryLogger() {
  const lines: { level: string; msg?: string }[] = [];
  const log = (level: string) => (_obj: object, msg?: string) => lines.push({ level, msg });
  return { lines, info: log('info'), warn: log('warn'), error: log('error') };
}

/** A bucket that records every put and fails while `failing` is set. */
function fakeSink() {
  const puts: [string, string][] = [];
  const stored = new Map<string, string>();
  const sink = {
    failing: false,
    puts,
    stored,
    put: async (key: string, value: string) => {
      puts.push([key, value]);
      if (sink.failing) throw new Error('timeout');
      stored.set(key, value);
    },
  };
  return sink;
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const fast = { retryBaseMs: 5, retryCapMs: 20 };

describe('IdempotencyRecorder', () => {
  it('writes the records of one turn together, one put per key, the last value winning', async () => {
    const sink = fakeSink();
    const rec = new IdempotencyRecorder(() => sink, memoryLogger(), fast);
    rec.record('a', '1');
    rec.record('b', '2');
    rec.record('a', '3');
    expect(sink.puts).toHaveLength(0); // nothing on the caller's path
    expect(rec.stats().pending).toBe(2);
    expect(await rec.drain(1_000)).toBe(0);
    expect(sink.puts).toEqual([
      ['a', '3'],
      ['b', '2'],
    ]);
    expect(rec.stats()).toEqual({ pending: 0, written: 2, dropped: 0 });
  });

  it('waits while the bucket is unreachable and retries failed puts until they land', async () => {
    const sink = fakeSink();
    let reachable = false;
    const failures: unknown[] = [];
    const log = memoryLogger();
    const rec = new IdempotencyRecorder(() => (reachable ? sink : undefined), log, {
      ...fast,
      onFailure: (err) => failures.push(err),
    });
    rec.record('k1', '10');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sink.puts).toHaveLength(0);

    reachable = true;
    sink.failing = true;
    const failedOnce = new Promise<void>((resolve) => {
      const poll = () => (failures.length >= 2 ? resolve() : setTimeout(poll, 5));
      poll();
    });
    await failedOnce;
    expect(sink.stored.size).toBe(0);
    expect(log.lines.some((l) => l.level === 'warn' && /retrying/.test(l.msg!))).toBe(true);

    sink.failing = false;
    expect(await rec.drain(2_000)).toBe(0);
    expect(sink.stored.get('k1')).toBe('10');
    expect(rec.stats()).toMatchObject({ pending: 0, written: 1, dropped: 0 });
  });

  it('bounds memory: records past maxPending are dropped, counted and logged', async () => {
    const log = memoryLogger();
    const rec = new IdempotencyRecorder(() => undefined, log, { ...fast, maxPending: 3 });
    for (let i = 0; i < 5; i++) rec.record(`k${i}`, String(i));
    rec.record('k0', '99'); // a newer value for a queued key still fits
    expect(rec.stats()).toEqual({ pending: 3, written: 0, dropped: 2 });
    expect(log.lines.filter((l) => l.level === 'warn' && /dropped/.test(l.msg!))).toHaveLength(1); // throttled
    await rec.drain(0);
  });

  it('drain() gives up after its timeout, counts what is left as lost, and refuses later records', async () => {
    const log = memoryLogger();
    const rec = new IdempotencyRecorder(() => undefined, log, fast);
    rec.record('x', '1');
    rec.record('y', '2');
    const started = Date.now();
    expect(await rec.drain(100)).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(log.lines.some((l) => l.level === 'error' && /unwritten/.test(l.msg!))).toBe(true);
    rec.record('z', '3');
    await turn();
    expect(rec.stats()).toEqual({ pending: 0, written: 0, dropped: 3 });
  });

  it('sends at most batchSize puts at once', async () => {
    let inFlight = 0;
    let most = 0;
    const sink: RecordSink = {
      put: async () => {
        most = Math.max(most, ++inFlight);
        await turn();
        inFlight--;
      },
    };
    const rec = new IdempotencyRecorder(() => sink, memoryLogger(), { ...fast, batchSize: 4 });
    for (let i = 0; i < 10; i++) rec.record(`k${i}`, String(i));
    expect(await rec.drain(1_000)).toBe(0);
    expect(most).toBe(4);
    expect(rec.stats().written).toBe(10);
  });
});
