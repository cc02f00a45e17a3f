/**
 * The embedded event log on a real SQLite file in temp dirs (no NATS): the adapter-specific behaviour the shared
 * contract suite cannot see (locking against a second process, kill -9 safety, retention, purge, clock-driven
 * idempotency expiry), plus reads, tails and group commit.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { AppConfig } from '../src/config/app-config.js';
import { matchesSubject } from '../src/events/pattern.js';
import {
  EmbeddedEventStore,
  MAX_BATCH,
  READ_WINDOW,
  type EmbeddedStoreOptions,
} from '../src/store/embedded/embedded-event-store.adapter.js';
import { StoreLockedError, StoreUnavailableError, type StoredEvent } from '../src/store/event-store.port.js';
import { waitFor } from './lib/wait.mjs';
import { testConfig } from './support/config.js';
import { describeEventStoreContract } from './support/store-contract.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD = join(ROOT, 'test/fixtures/embedded-crash-child.mjs');
const enc = new TextEncoder();
const dec = new TextDecoder();
const END = Number.MAX_SAFE_INTEGER;

const tempDirs: string[] = [];
const stores: EmbeddedEventStore[] = [];
const children: ChildProcess[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hookstream-embedded-'));
  tempDirs.push(dir);
  return dir;
}

interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg?: string;
}

function makeStore(
  dataDir: string,
  file: Record<string, unknown> = {},
  options: EmbeddedStoreOptions = {},
): { store: EmbeddedEventStore; config: AppConfig; logs: LogLine[] } {
  const config = testConfig({ dataDir, file });
  const logs: LogLine[] = [];
  const logger = {
    info: (obj: object, msg?: string) => logs.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg?: string) => logs.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg?: string) => logs.push({ level: 'error', obj, msg }),
  };
  const store = new EmbeddedEventStore(config, logger, options);
  stores.push(store);
  return { store, config, logs };
}

async function started(
  dataDir: string,
  file: Record<string, unknown> = {},
  options: EmbeddedStoreOptions = {},
): Promise<ReturnType<typeof makeStore>> {
  const s = makeStore(dataDir, file, options);
  await s.store.start();
  return s;
}

const ev = (subject: string, msgId: string, body: unknown = { msgId }) => ({
  subject,
  msgId,
  data: enc.encode(JSON.stringify(body)),
});

async function readAll(
  store: EmbeddedEventStore,
  filter = '>',
  fromSeq = 1,
  untilSeq = END,
  page = 100,
): Promise<StoredEvent[]> {
  const reader = await store.openReader({ fromSeq, filter, untilSeq });
  const out: StoredEvent[] = [];
  try {
    for (;;) {
      const batch = await reader.next(page);
      if (batch.length === 0) return out;
      expect(batch.length).toBeLessThanOrEqual(page);
      out.push(...batch);
    }
  } finally {
    await reader.close();
  }
}

/** A read thread script that does not exist: the store must fall back to reads on the event loop. */
const MISSING_WORKER = new URL('./no-such-read-worker.mjs', import.meta.url);

const seqs = (events: StoredEvent[]) => events.map((e) => e.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of stores.splice(0)) await s.stop();
});

afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

// The shared port contract, with a two-token prefix so prefix handling is exercised too.
describeEventStoreContract(
  'embedded',
  async () => {
    const dir = tempDir();
    const file = { stream: { subjectPrefix: 'hs.events' } };
    const { store } = await started(dir, file);
    let current = store;
    return {
      store,
      subjectPrefix: 'hs.events',
      reopen: async () => {
        await current.stop();
        current = (await started(dir, file)).store;
        return current;
      },
      cleanup: async () => {
        for (const s of stores.splice(0)) await s.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { reopen: true },
);

describe('EmbeddedEventStore: lifecycle and identity', () => {
  it('creates DATA_DIR, holds the file in WAL mode beside its lock file, and keeps its epoch across restarts', async () => {
    const dir = join(tempDir(), 'nested', 'data');
    const a = await started(dir);
    expect(a.store.kind).toBe('embedded');
    expect(await a.store.isReady()).toBe(true);
    const s0 = await a.store.state();
    expect(s0).toEqual({ epoch: expect.stringMatching(/^[0-9a-z]{12}$/), firstSeq: 1, lastSeq: 0 });
    await a.store.append(ev('events.acme.x', 'a:1'));
    await a.store.append(ev('events.acme.x', 'a:2'));
    const files = readdirSync(dir);
    expect(files).toContain('hookstream.db');
    expect(files).toContain('hookstream.db-wal');
    // The directory lock is its own file; the log is in the normal locking mode, so its read thread can read it.
    expect(files).toContain('hookstream.lock');
    await a.store.stop();
    expect(await a.store.isReady()).toBe(false);

    const b = await started(dir);
    expect(await b.store.state()).toEqual({ epoch: s0.epoch, firstSeq: 1, lastSeq: 2 });
    await b.store.stop();

    for (const f of readdirSync(dir)) rmSync(join(dir, f));
    const c = await started(dir);
    const s2 = await c.store.state();
    expect(s2.epoch).toMatch(/^[0-9a-z]{12}$/);
    expect(s2.epoch).not.toBe(s0.epoch);
    expect(s2).toMatchObject({ firstSeq: 1, lastSeq: 0 });
  });

  it('refuses every operation with StoreUnavailableError when not started or stopped', async () => {
    const { store } = makeStore(tempDir());
    await expect(store.append(ev('events.a.b', 'x'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.state()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.seqAtTime(0)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.openReader({ fromSeq: 1, filter: '>', untilSeq: END })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    await expect(store.tail(1, () => undefined)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(await store.isReady()).toBe(false);

    await store.start();
    const reader = await store.openReader({ fromSeq: 1, filter: '>', untilSeq: END });
    await store.append(ev('events.a.b', 'x'));
    await store.stop();
    await expect(store.append(ev('events.a.b', 'y'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(reader.next(10)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('commits appends already accepted when stopped in the same tick', async () => {
    const dir = tempDir();
    const { store } = await started(dir);
    const pending = range(1, 20).map((i) => store.append(ev('events.a.b', `k${i}`)));
    await store.stop();
    expect((await Promise.all(pending)).map((r) => r.seq)).toEqual(range(1, 20));
    const again = await started(dir);
    expect(seqs(await readAll(again.store))).toEqual(range(1, 20));
  });

  it('serves metadata on the new connection when the same store is stopped and started again', async () => {
    const { store } = await started(tempDir());
    const bucket = await store.metadata().bucket('endpoints');
    const first = await bucket.put('ep1', 'v1');
    await store.stop();
    await expect(bucket.get('ep1')).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.start();
    // Statements prepared on the closed connection are not reused: the same bucket reads and writes again.
    expect(await bucket.get('ep1')).toEqual({ key: 'ep1', value: 'v1', revision: first });
    expect(await bucket.update('ep1', 'v2', first)).toBeGreaterThan(first);
    expect((await (await store.metadata().bucket('endpoints')).get('ep1'))?.value).toBe('v2');
  });
});

describe('EmbeddedEventStore: one process per DATA_DIR', () => {
  let build: string;
  let adapterPath: string;

  beforeAll(() => {
    // The child runs the adapter itself, transpiled from src (no build step, no dist/). It must live inside the
    // project so that `better-sqlite3` resolves from node_modules.
    const cache = join(ROOT, 'node_modules', '.cache'); // absent after a fresh `npm ci`
    mkdirSync(cache, { recursive: true });
    build = mkdtempSync(join(cache, 'hookstream-embedded-test-'));
    adapterPath = transpileGraph(join(ROOT, 'src/store/embedded/embedded-event-store.adapter.ts'), build);
  });

  afterAll(() => {
    if (build) rmSync(build, { recursive: true, force: true });
  });

  // The child needs only plain fields (dataDir, stream, idempotency); the Map of sources does not survive JSON.
  const childConfig = (dataDir: string): string => JSON.stringify({ ...testConfig({ dataDir }), sources: [] });

  it('refuses a second store on the same directory in this process, and frees the lock on stop', async () => {
    const dir = tempDir();
    const first = await started(dir);
    const second = makeStore(dir);
    const err = await second.store.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreLockedError);
    expect((err as Error).message).toBe(`data directory ${dir} is locked by another Hookstream process`);
    expect(await second.store.isReady()).toBe(false);
    // The holder is unaffected.
    expect((await first.store.append(ev('events.a.b', 'k'))).seq).toBe(1);
    await first.store.stop();
    await second.store.start();
    expect((await second.store.state()).lastSeq).toBe(1);
  });

  it('makes a second process fail at start while this one holds the directory', async () => {
    const dir = tempDir();
    await started(dir);
    const child = runChild(['open', adapterPath, childConfig(dir)]);
    const { code, stderr } = await child.exited;
    expect(code).toBe(3);
    expect(stderr).toContain(`StoreLockedError: data directory ${dir} is locked by another Hookstream process`);
  });

  it('fails at start while another process holds the directory, and starts once that process is gone', async () => {
    const dir = tempDir();
    const holder = runChild(['hold', adapterPath, childConfig(dir)]);
    await waitFor(() => holder.stdout().includes('locked\n'), { message: 'child to hold the lock' });
    const { store } = makeStore(dir);
    await expect(store.start()).rejects.toThrow(
      new StoreLockedError(`data directory ${dir} is locked by another Hookstream process`),
    );
    holder.process.kill('SIGKILL');
    await holder.exited;
    await store.start();
    expect(await store.isReady()).toBe(true);
  });

  it('loses no acknowledged append when the process is killed with SIGKILL', async () => {
    const dir = tempDir();
    const child = runChild(['crash', adapterPath, childConfig(dir)]);
    const acks = new Map<number, string>();
    await waitFor(
      () => {
        for (const line of child.stdout().split('\n').slice(0, -1)) {
          const [seq, id] = line.split(' ');
          acks.set(Number(seq), id);
        }
        if (acks.size >= 1000) child.process.kill('SIGKILL');
        return acks.size >= 1000;
      },
      { timeoutMs: 30_000, intervalMs: 1, message: '1000 acknowledged appends' },
    );
    const { signal, stderr } = await child.exited;
    expect(signal).toBe('SIGKILL');
    expect(stderr).toBe('');
    // Lines still in the pipe when the kill landed were acknowledged too.
    for (const line of child.stdout().split('\n').slice(0, -1)) {
      const [seq, id] = line.split(' ');
      acks.set(Number(seq), id);
    }

    const { store } = await started(dir);
    const stored = await readAll(store, '>', 1, END, 500);
    // Everything acknowledged is there, at its acknowledged seq, with its bytes; more may have been committed
    // after the last line the child printed.
    const bySeq = new Map(stored.map((e) => [e.seq, e]));
    for (const [seq, id] of acks) {
      const e = bySeq.get(seq);
      expect(e).toBeDefined();
      expect(JSON.parse(dec.decode(e!.data)).id).toBe(id);
    }
    expect(stored.length).toBeGreaterThanOrEqual(acks.size);
    expect(seqs(stored)).toEqual(range(1, stored.length));
    expect((await store.state()).lastSeq).toBe(stored.length);
    // The log goes on where it stopped.
    expect((await store.append(ev('events.crash.test', 'after'))).seq).toBe(stored.length + 1);
  });
});

describe('EmbeddedEventStore: append', () => {
  it('assigns increasing sequences and stores subject, bytes and time exactly', async () => {
    let clock = 1_800_000_000_000;
    const { store } = await started(tempDir(), {}, { now: () => clock });
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const r1 = await store.append({ subject: 'events.acme.invoice.paid', msgId: 'acme:1', data: bytes });
    clock += 5;
    const r2 = await store.append(ev('events.acme.other', 'acme:2'));
    expect(r1).toEqual({ seq: 1, duplicate: false });
    expect(r2).toEqual({ seq: 2, duplicate: false });
    bytes[0] = 99; // the store kept its own copy
    const all = await readAll(store);
    expect(all[0]).toEqual({
      seq: 1,
      subject: 'events.acme.invoice.paid',
      time: 1_800_000_000_000,
      data: expect.anything(),
    });
    expect(Array.from(all[0].data)).toEqual([0, 1, 2, 250, 255]);
    expect(Object.getPrototypeOf(all[0].data)).toBe(Uint8Array.prototype);
    expect(all[1].time).toBe(1_800_000_000_005);
  });

  it('answers a repeated msgId as a duplicate with the original seq, also within one batch and after restart', async () => {
    const dir = tempDir();
    const { store } = await started(dir);
    await store.append(ev('events.a.b', 'other'));
    const [first, sameTick] = await Promise.all([
      store.append(ev('events.a.b', 'src:dup', { n: 1 })),
      store.append(ev('events.a.b', 'src:dup', { n: 2 })),
    ]);
    expect(first).toEqual({ seq: 2, duplicate: false });
    expect(sameTick).toEqual({ seq: 2, duplicate: true });
    expect(await store.append(ev('events.a.b', 'src:dup', { n: 3 }))).toEqual({ seq: 2, duplicate: true });
    await store.stop();

    const again = await started(dir);
    expect(await again.store.append(ev('events.a.b', 'src:dup'))).toEqual({ seq: 2, duplicate: true });
    const all = await readAll(again.store);
    expect(seqs(all)).toEqual([1, 2]);
    expect(JSON.parse(dec.decode(all[1].data))).toEqual({ n: 1 });
    // An empty msgId means no idempotency key: stored every time.
    expect((await again.store.append(ev('events.a.b', ''))).duplicate).toBe(false);
    expect((await again.store.append(ev('events.a.b', ''))).duplicate).toBe(false);
  });

  it('forgets a msgId after idempotency.ttl (stored again) and prunes expired keys', async () => {
    let clock = 1_800_000_000_000;
    const { store } = await started(tempDir(), { idempotency: { ttl: '1h' } }, { now: () => clock });
    expect(await store.append(ev('events.a.b', 'k1'))).toEqual({ seq: 1, duplicate: false });
    clock += 3_600_000 - 1;
    expect(await store.append(ev('events.a.b', 'k1'))).toEqual({ seq: 1, duplicate: true });
    clock += 1; // expires_at is exclusive
    expect(await store.append(ev('events.a.b', 'k1'))).toEqual({ seq: 2, duplicate: false });
    expect(await store.append(ev('events.a.b', 'k1'))).toEqual({ seq: 2, duplicate: true });

    await store.append(ev('events.a.b', 'k2'));
    clock += 3_600_000;
    expect(await store.enforceRetention()).toEqual({ events: 0, idempotencyKeys: 2 });
    expect(await store.append(ev('events.a.b', 'k2'))).toEqual({ seq: 4, duplicate: false });
  });

  it('writes appends issued in one tick in one transaction, and splits bursts at MAX_BATCH rows', async () => {
    // Each transaction reads the clock once: counting reads counts transactions.
    let reads = 0;
    const { store } = await started(
      tempDir(),
      {},
      { now: () => (reads++, 1_800_000_000_000), retentionIntervalMs: 3_600_000 },
    );
    reads = 0;
    const ten = await Promise.all(range(1, 10).map((i) => store.append(ev('events.a.b', `t${i}`))));
    expect(ten.map((r) => r.seq)).toEqual(range(1, 10));
    expect(reads).toBe(1);

    reads = 0;
    const n = MAX_BATCH * 2 + 500;
    const burst = await Promise.all(range(1, n).map((i) => store.append(ev('events.a.b', `b${i}`))));
    expect(burst.map((r) => r.seq)).toEqual(range(11, 10 + n));
    expect(reads).toBe(3);
  });

  it('refuses subjects outside the stream and malformed requests', async () => {
    const { store } = await started(tempDir());
    await expect(store.append(ev('other.a', 'x'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.append(ev('events', 'x'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.append(ev('eventsX.a', 'x'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(
      store.append({ subject: 'events.a', msgId: 'x', data: 'text' as unknown as Uint8Array }),
    ).rejects.toBeInstanceOf(TypeError);
    expect(await store.state()).toMatchObject({ firstSeq: 1, lastSeq: 0 });
  });

  it('rejects a whole batch with StoreUnavailableError when the write fails, leaving no hole in the sequence', async () => {
    const { store, logs } = await started(tempDir());
    await store.append(ev('events.a.b', 'ok1'));
    // Simulate a full disk: cap the file at its current size (SQLITE_FULL on the next page it needs).
    const db = (store as unknown as { database: { db: { pragma(s: string, o?: object): unknown } } }).database.db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    const big = { subject: 'events.a.b', msgId: 'big', data: new Uint8Array(256 * 1024) };
    const results = await Promise.allSettled([store.append(big), store.append(ev('events.a.b', 'small'))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(StoreUnavailableError);
    }
    expect(logs.some((l) => l.level === 'error')).toBe(true);
    expect((await store.state()).lastSeq).toBe(1);

    db.pragma('max_page_count = 1073741823');
    expect(await store.append(big)).toEqual({ seq: 2, duplicate: false });
    expect(await store.append(ev('events.a.b', 'small'))).toEqual({ seq: 3, duplicate: false });
    expect(seqs(await readAll(store))).toEqual([1, 2, 3]);
  });
});

describe('EmbeddedEventStore: retention, purge and time', () => {
  it('drops events older than stream.maxAge, oldest first, and reports the new firstSeq', async () => {
    let clock = 1_800_000_000_000;
    const { store } = await started(
      tempDir(),
      { stream: { maxAge: '1h', duplicateWindow: '1m' } },
      { now: () => clock, retentionIntervalMs: 3_600_000 },
    );
    for (let i = 1; i <= 5; i++) await store.append(ev('events.a.b', `old${i}`));
    clock += 30 * 60_000;
    for (let i = 1; i <= 3; i++) await store.append(ev('events.a.b', `new${i}`));
    const { epoch } = await store.state();

    expect(await store.enforceRetention(clock)).toEqual({ events: 0, idempotencyKeys: 0 });
    clock += 30 * 60_000; // the first five are now exactly maxAge old; the last three are half that
    expect(await store.enforceRetention(clock)).toEqual({ events: 0, idempotencyKeys: 0 });
    clock += 1;
    expect((await store.enforceRetention(clock)).events).toBe(5);
    expect(await store.state()).toEqual({ epoch, firstSeq: 6, lastSeq: 8 });
    expect(seqs(await readAll(store))).toEqual([6, 7, 8]);
    // A reader starting before the oldest stored event starts at it (the caller detects the gap from state()).
    expect(seqs(await readAll(store, '>', 2))).toEqual([6, 7, 8]);

    clock += 60 * 60_000;
    expect((await store.enforceRetention(clock)).events).toBe(3);
    expect(await store.state()).toEqual({ epoch, firstSeq: 9, lastSeq: 8 });
    expect((await store.append(ev('events.a.b', 'next'))).seq).toBe(9);
  });

  it('enforces maxAge on its own timer', async () => {
    let clock = 1_800_000_000_000;
    const { store } = await started(
      tempDir(),
      { stream: { maxAge: '1h', duplicateWindow: '1m' } },
      { now: () => clock, retentionIntervalMs: 20 },
    );
    for (let i = 1; i <= 3; i++) await store.append(ev('events.a.b', `e${i}`));
    clock += 2 * 3_600_000;
    await waitFor(async () => (await store.state()).firstSeq === 4, { message: 'the timer to drop expired events' });
    expect(await store.state()).toMatchObject({ firstSeq: 4, lastSeq: 3 });
  });

  it('keeps the sum of payload sizes within stream.maxBytes at every append, dropping the oldest', async () => {
    const dir = tempDir();
    const { store } = await started(dir, { stream: { maxBytes: '10KB' } });
    const kb = (id: string) => ({ subject: 'events.a.b', msgId: id, data: new Uint8Array(1024).fill(7) });
    for (let i = 1; i <= 15; i++) await store.append(kb(`k${i}`));
    expect(await store.state()).toMatchObject({ firstSeq: 6, lastSeq: 15 });
    await Promise.all(range(16, 19).map((i) => store.append(kb(`k${i}`)))); // one batch over the limit
    expect(await store.state()).toMatchObject({ firstSeq: 10, lastSeq: 19 });
    await store.stop();

    // A lower limit after a restart: the size kept in the file is the starting point, retention catches up.
    const smaller = await started(dir, { stream: { maxBytes: '4KB' } }, { retentionIntervalMs: 3_600_000 });
    expect(await smaller.store.state()).toMatchObject({ firstSeq: 10, lastSeq: 19 });
    expect(await smaller.store.enforceRetention()).toEqual({ events: 6, idempotencyKeys: 0 });
    expect(await smaller.store.state()).toMatchObject({ firstSeq: 16, lastSeq: 19 });
    await smaller.store.append(kb('k20'));
    expect(seqs(await readAll(smaller.store))).toEqual([17, 18, 19, 20]);
  });

  it('deletes a large backlog in chunks', async () => {
    let clock = 1_800_000_000_000;
    const { store } = await started(
      tempDir(),
      { stream: { maxAge: '1h', duplicateWindow: '1m' }, idempotency: { ttl: '1h' } },
      { now: () => clock, retentionIntervalMs: 3_600_000 },
    );
    await Promise.all(range(1, 3500).map((i) => store.append(ev('events.a.b', `c${i}`))));
    clock += 2 * 3_600_000;
    await store.append(ev('events.a.b', 'fresh'));
    expect(await store.enforceRetention()).toEqual({ events: 3500, idempotencyKeys: 3500 });
    expect(await store.state()).toMatchObject({ firstSeq: 3501, lastSeq: 3501 });
  });

  it('never reuses a sequence after a purge, also across restarts; the epoch stays', async () => {
    const dir = tempDir();
    const { store } = await started(dir);
    for (let i = 1; i <= 4; i++) await store.append(ev('events.a.b', `p${i}`));
    const { epoch } = await store.state();
    await store.purge();
    expect(await store.state()).toEqual({ epoch, firstSeq: 5, lastSeq: 4 });
    expect(await readAll(store)).toEqual([]);
    await store.stop();

    const again = await started(dir);
    expect(await again.store.state()).toEqual({ epoch, firstSeq: 5, lastSeq: 4 });
    expect((await again.store.append(ev('events.a.b', 'p5'))).seq).toBe(5);
    expect(seqs(await readAll(again.store))).toEqual([5]);
    expect(await again.store.state()).toEqual({ epoch, firstSeq: 5, lastSeq: 5 });
  });

  it('finds the first seq at or after a time, and keeps times non-decreasing when the clock steps back', async () => {
    let clock = 1_800_000_000_000;
    const { store } = await started(tempDir(), {}, { now: () => clock });
    const t0 = clock;
    await store.append(ev('events.a.b', 's1'));
    await store.append(ev('events.a.b', 's2'));
    clock += 1000;
    await store.append(ev('events.a.b', 's3'));
    clock -= 5000; // wall clock stepped back: stored times must not
    await store.append(ev('events.a.b', 's4'));
    clock += 10_000;
    await store.append(ev('events.a.b', 's5'));

    expect((await readAll(store)).map((e) => e.time)).toEqual([t0, t0, t0 + 1000, t0 + 1000, t0 + 6000]);
    expect(await store.seqAtTime(0)).toBe(1);
    expect(await store.seqAtTime(t0)).toBe(1);
    expect(await store.seqAtTime(t0 + 1)).toBe(3);
    expect(await store.seqAtTime(t0 + 1000)).toBe(3);
    expect(await store.seqAtTime(t0 + 1001)).toBe(5);
    expect(await store.seqAtTime(t0 + 6001)).toBe(6);
  });
});

describe('EmbeddedEventStore: readers', () => {
  const subjects = [
    'events.acme.invoice.paid',
    'events.acme.invoice.created',
    'events.other.invoice.paid',
    'events.acme.a.b.c',
    'events.acme',
    'events.github.push',
    'events.acme.invoice.paid',
  ];

  async function seeded() {
    const { store } = await started(tempDir());
    for (let round = 0; round < 3; round++) {
      for (const [i, s] of subjects.entries()) await store.append(ev(s, `${round}:${i}`));
    }
    return store;
  }

  it('filters with NATS wildcards, exactly, in seq order, across pages', async () => {
    const store = await seeded();
    const all = await readAll(store);
    expect(seqs(all)).toEqual(range(1, 21));
    const filters = [
      'events.acme.invoice.paid',
      'events.acme.*.paid',
      'events.*.invoice.*',
      'events.acme.>',
      'events.*',
      'events.>',
      '*.acme.>',
      '>',
      '*.*.*.*',
      'events.acme.a.*.c',
      'events.nothing.>',
      'events.acme.invoice',
    ];
    for (const filter of filters) {
      const expected = all.filter((e) => matchesSubject(filter, e.subject));
      for (const page of [1, 2, 7, 100]) {
        expect({ filter, page, got: seqs(await readAll(store, filter, 1, END, page)) }).toEqual({
          filter,
          page,
          got: seqs(expected),
        });
      }
    }
    // Spot checks, independent of matchesSubject.
    expect(seqs(await readAll(store, 'events.acme.*.paid', 1))).toEqual([1, 7, 8, 14, 15, 21]);
    expect(seqs(await readAll(store, 'events.*', 1))).toEqual([5, 12, 19]);
    expect(seqs(await readAll(store, 'events.acme.>', 10))).toEqual([11, 14, 15, 16, 18, 21]);
  });

  it('starts at fromSeq and stops at untilSeq, in SQL (nothing after it is scanned)', async () => {
    const store = await seeded();
    expect(seqs(await readAll(store, '>', 5, 9))).toEqual([5, 6, 7, 8, 9]);
    // 9 does not match: the read still ends at 9, without walking on to the next match (10).
    expect(seqs(await readAll(store, 'events.other.>', 1, 9))).toEqual([3]);
    expect(seqs(await readAll(store, 'events.acme.invoice.paid', 2, 8, 1))).toEqual([7, 8]);
    expect(await readAll(store, '>', 10, 9)).toEqual([]);
    expect(seqs(await readAll(store, '>', 21, 21))).toEqual([21]);
    expect(await readAll(store, '>', 22)).toEqual([]);
  });

  it('pages until complete: an empty page ends the read, and stays empty', async () => {
    const store = await seeded();
    const reader = await store.openReader({ fromSeq: 1, filter: 'events.acme.invoice.paid', untilSeq: 14 });
    expect(seqs(await reader.next(2))).toEqual([1, 7]);
    expect(seqs(await reader.next(2))).toEqual([8, 14]);
    expect(await reader.next(2)).toEqual([]);
    await store.append(ev('events.acme.invoice.paid', 'late'));
    expect(await reader.next(2)).toEqual([]);
    await reader.close();
    await reader.close();
    expect(await reader.next(2)).toEqual([]);
  });

  it('reads events appended after it was opened, up to untilSeq', async () => {
    const store = await seeded();
    const reader = await store.openReader({ fromSeq: 20, filter: 'events.acme.>', untilSeq: 23 });
    expect(seqs(await reader.next(10))).toEqual([21]);
    await store.append(ev('events.other.x', 'n1'));
    await store.append(ev('events.acme.y', 'n2'));
    await store.append(ev('events.acme.z', 'n3'));
    await store.append(ev('events.acme.w', 'n4'));
    expect(seqs(await reader.next(10))).toEqual([23]);
    expect(await reader.next(10)).toEqual([]);
  });

  it.each([
    ['on the read thread', {}],
    ['on the event loop (no read thread)', { readWorker: MISSING_WORKER }],
  ])(
    'walks a table its pattern does not match in bounded windows, yielding between them, and stops when closed (%s)',
    async (_how, options) => {
      const { store } = await started(tempDir(), {}, options);
      const windows = 5;
      await Promise.all(range(1, windows * READ_WINDOW).map((i) => store.append(ev('events.demo.a', `w${i}`))));
      await store.append(ev('events.demo.zz.hit', 'hit'));
      // Turns of the event loop that ran while one next() call was in progress.
      const turnsDuring = async (read: () => Promise<StoredEvent[]>) => {
        let turns = 0;
        let reading = true;
        const tick = () => {
          if (!reading) return;
          turns++;
          setImmediate(tick);
        };
        setImmediate(tick);
        const page = await read();
        reading = false;
        return { page, turns };
      };
      const reader = await store.openReader({ fromSeq: 1, filter: 'events.demo.zz.*', untilSeq: END });
      const { page, turns } = await turnsDuring(() => reader.next(10));
      expect(seqs(page)).toEqual([windows * READ_WINDOW + 1]);
      // One statement per window and a turn between two: the loop was never held for the whole table.
      expect(turns).toBeGreaterThanOrEqual(windows);
      expect(await reader.next(10)).toEqual([]);

      // A reader closed while it walks gives up at the next window instead of finishing the table. Closed at
      // once, while its first window is being read: a later close raced the read thread, which on an idle
      // machine could answer every window before the event loop reached a setImmediate.
      const closing = await store.openReader({ fromSeq: 1, filter: 'events.demo.zz.*', untilSeq: END });
      const pending = closing.next(10);
      void closing.close();
      expect(await pending).toEqual([]);
    },
  );

  it('reads on its read thread: what the writer committed, with no warning', async () => {
    const { store, logs } = await started(tempDir());
    await Promise.all(range(1, 3000).map((i) => store.append(ev(`events.t.${i % 3}`, `r${i}`))));
    const got = await readAll(store, 'events.t.1', 1, END, 256);
    expect(seqs(got)).toEqual(range(1, 3000).filter((i) => i % 3 === 1));
    expect(JSON.parse(dec.decode(got[0].data))).toEqual({ msgId: 'r1' });
    // Appended while a read is open: seen by the read thread's connection too.
    const reader = await store.openReader({ fromSeq: 3001, filter: '>', untilSeq: END });
    await store.append(ev('events.t.x', 'late'));
    expect(seqs(await reader.next(10))).toEqual([3001]);
    await reader.close();
    expect(logs.filter((l) => l.level !== 'info')).toEqual([]);
  });

  it('reads on the event loop, with one warning, when the read thread cannot start', async () => {
    const { store, logs } = await started(tempDir(), {}, { readWorker: MISSING_WORKER });
    await Promise.all(range(1, 50).map((i) => store.append(ev('events.t.a', `f${i}`))));
    expect(seqs(await readAll(store, 'events.t.*', 1, END, 7))).toEqual(range(1, 50));
    expect(seqs(await readAll(store, 'events.t.a', 10, 20, 7))).toEqual(range(10, 20));
    const warnings = logs.filter((l) => l.level === 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/read thread is not available/);
  });

  it('refuses a malformed pattern', async () => {
    const store = await seeded();
    for (const filter of ['', 'events..a', 'events.>.a', '.events']) {
      await expect(store.openReader({ fromSeq: 1, filter, untilSeq: END })).rejects.toBeInstanceOf(RangeError);
    }
  });
});

describe('EmbeddedEventStore: tail', () => {
  it('delivers stored events from fromSeq, then new commits, in order, without gap or duplicate', async () => {
    const { store } = await started(tempDir());
    // More than one catch-up page, and appends racing the catch-up.
    await Promise.all(range(1, 2500).map((i) => store.append(ev('events.a.b', `pre${i}`))));
    const got: number[] = [];
    const tail = await store.tail(700, (e) => got.push(e.seq));
    for (let w = 0; w < 30; w++) {
      await Promise.all(range(1, 50).map((i) => store.append(ev('events.a.c', `live${w}:${i}`))));
    }
    const last = 2500 + 30 * 50;
    await waitFor(() => got.length >= last - 699, { message: 'the tail to catch up' });
    expect(got).toEqual(range(700, last));

    await tail.stop();
    await store.append(ev('events.a.b', 'after-stop'));
    await store.append(ev('events.a.b', 'after-stop-2'));
    expect(got[got.length - 1]).toBe(last);
  });

  it('from lastSeq + 1 gets only new events; duplicates are not delivered; a throwing handler harms nobody', async () => {
    const { store, logs } = await started(tempDir());
    await store.append(ev('events.a.b', 'old'));
    const got: StoredEvent[] = [];
    await store.tail(2, (e) => got.push(e));
    await store.tail(1, () => {
      throw new Error('subscriber bug');
    });
    const r = await store.append(ev('events.x.y', 'new', { hello: 1 }));
    expect(await store.append(ev('events.x.y', 'new'))).toEqual({ seq: r.seq, duplicate: true });
    await store.append(ev('events.x.z', 'new2'));
    await waitFor(() => got.length >= 2, { message: 'live events' });
    expect(got.map((e) => [e.seq, e.subject])).toEqual([
      [2, 'events.x.y'],
      [3, 'events.x.z'],
    ]);
    expect(JSON.parse(dec.decode(got[0].data))).toEqual({ hello: 1 });
    expect(logs.filter((l) => l.level === 'error' && l.msg?.includes('tail handler threw')).length).toBeGreaterThan(0);
  });

  it('skips what retention removed before the tail reached it', async () => {
    const { store } = await started(tempDir());
    for (let i = 1; i <= 5; i++) await store.append(ev('events.a.b', `r${i}`));
    await store.purge();
    await store.append(ev('events.a.b', 'r6'));
    const got: number[] = [];
    await store.tail(1, (e) => got.push(e.seq));
    await store.append(ev('events.a.b', 'r7'));
    await waitFor(() => got.length >= 2, { message: 'tail' });
    expect(got).toEqual([6, 7]);
  });

  it('stops its tails on stop()', async () => {
    const dir = tempDir();
    const { store } = await started(dir);
    const got: number[] = [];
    await store.tail(1, (e) => got.push(e.seq));
    await store.append(ev('events.a.b', 'one'));
    await waitFor(() => got.length === 1, { message: 'tail' });
    await store.stop();
    await store.start();
    await store.append(ev('events.a.b', 'two'));
    await store.append(ev('events.a.b', 'three'));
    expect(got).toEqual([1]);
  });
});

// ---- child processes ----

interface Child {
  process: ChildProcess;
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function runChild(args: string[]): Child {
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // jest's --experimental-vm-modules is not for the child
  const proc = spawn(process.execPath, [CHILD, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) =>
    proc.on('close', (code, signal) => res({ code, signal, stderr: err })),
  );
  return { process: proc, stdout: () => out, exited };
}

/**
 * Transpiles `entry` and the relative modules its output imports into `outDir` (same layout as the repo), and
 * returns the entry's output path. Type-only imports are erased by the transpiler, so only runtime code follows.
 */
function transpileGraph(entry: string, outDir: string): string {
  const todo = [entry];
  const seen = new Set<string>();
  while (todo.length) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const dest = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
    for (const m of js.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g)) {
      todo.push(resolve(dirname(file), `${m[1]}.ts`));
    }
  }
  const out = join(outDir, relative(ROOT, entry)).replace(/\.ts$/, '.js');
  if (!existsSync(out)) throw new Error(`transpile produced no ${out}`);
  return out;
}
