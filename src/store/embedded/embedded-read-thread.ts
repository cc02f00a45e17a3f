/**
 * The main thread's side of the embedded log's read thread (embedded-read-worker.mjs): starts the worker, which
 * opens its own read-only connection to the log file, hands it catch-up statements and turns its packed answers
 * back into StoredEvents (views into one transferred buffer: no copy per row).
 *
 * Why a thread: better-sqlite3 runs a statement on the thread that calls it. On the event loop, a deep replay's
 * reads took turns with ingest and live fan-out; in the worker they run beside them, on another core, and the
 * next window is read while the current one is being sent.
 *
 * The worker is started with the store (so the first catch-up does not wait for it) and stopped with it. If it
 * cannot start (or dies), `start()` answers false and the store reads on its own connection, on the event loop,
 * as before (with a warning).
 */
import { Worker } from 'node:worker_threads';
import type { StoredEvent } from '../event-store.port.js';
import { StoreUnavailableError } from '../event-store.port.js';
import { SQL } from './embedded-schema.js';
import type { EmbeddedStoreLogger } from './embedded-util.js';

/** One window's candidate rows, as the worker packs them. */
interface Packed {
  id: number;
  n: number;
  seqs: Float64Array;
  times: Float64Array;
  /** Each distinct subject of the window once; row i's is `subjects[subjectOf[i]]`. */
  subjects: string[];
  subjectOf: Uint32Array;
  ends: Uint32Array;
  data: Uint8Array;
}

interface Failed {
  id: number;
  error: string;
  code?: string;
}

interface Pending {
  id: number;
  resolve: (rows: StoredEvent[]) => void;
  reject: (err: Error) => void;
}

/** What a window asks for: rows in `[from, to]` passing the pre-filter (`literal` subject, else `glob`), at most `limit`. */
export interface WindowRequest {
  from: number;
  to: number;
  limit: number;
  literal?: string;
  glob?: string;
}

const WORKER_URL = new URL('./embedded-read-worker.mjs', import.meta.url);
/** How long the worker may take to open its connection before the store reads on the event loop instead. */
const START_TIMEOUT_MS = 10_000;

export class EmbeddedReadThread {
  private worker: Worker | undefined;
  private starting: Promise<boolean> | undefined;
  private readonly pending: Pending[] = [];
  private nextId = 1;
  /** Set once the worker failed: reads stay on the event loop until the store is restarted. */
  private failed = false;

  constructor(
    private readonly file: string,
    private readonly logger: EmbeddedStoreLogger,
    /** The worker's script (tests point it elsewhere to see the fallback). */
    private readonly script: URL = WORKER_URL,
  ) {}

  /** Starts the worker once; true when it serves reads, false when the caller must read on its own connection. */
  start(): Promise<boolean> {
    if (this.failed) return Promise.resolve(false);
    return (this.starting ??= this.spawn());
  }

  /** Whether reads go to the worker now (started and alive). */
  get running(): boolean {
    return this.worker !== undefined && !this.failed;
  }

  /** The candidate rows of one window, in seq order. Rejects with StoreUnavailableError if the worker fails. */
  rows(req: WindowRequest): Promise<StoredEvent[]> {
    const worker = this.worker;
    if (!worker || this.failed) return Promise.reject(new StoreUnavailableError('embedded read thread is not running'));
    const id = this.nextId++;
    return new Promise<StoredEvent[]>((resolve, reject) => {
      if (this.pending.length === 0) worker.ref();
      this.pending.push({ id, resolve, reject });
      worker.postMessage({ id, ...req });
    });
  }

  /** Closes the worker's connection and ends the thread (before the writer closes its own, so it checkpoints). */
  async stop(): Promise<void> {
    // A worker still starting is waited for and stopped too, never left behind with its connection.
    if (this.starting) await this.starting;
    const worker = this.worker;
    this.worker = undefined;
    this.starting = undefined;
    this.failed = false;
    this.failAll(new StoreUnavailableError('embedded event log is stopped'));
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close');
    // The worker ends once its connection is closed and its port with it; terminate() if it does not.
    const timer = setTimeout(() => void worker.terminate(), 2_000);
    await exited;
    clearTimeout(timer);
  }

  private spawn(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let worker: Worker;
      try {
        worker = new Worker(this.script, {
          workerData: {
            file: this.file,
            literalSql: [SQL.pageLiteralHeads, SQL.pageLiteralData, SQL.pageLiteral],
            globSql: [SQL.pageGlobHeads, SQL.pageGlobData, SQL.pageGlob],
          },
        });
      } catch (err) {
        this.giveUp(err);
        return resolve(false);
      }
      let ready = false;
      const timer = setTimeout(() => {
        if (ready) return;
        this.giveUp(new Error(`no answer within ${START_TIMEOUT_MS} ms`));
        void worker.terminate();
        resolve(false);
      }, START_TIMEOUT_MS);
      worker.on('message', (m: { ready?: boolean; error?: string } | Packed | Failed) => {
        if (!ready && 'ready' in m) {
          clearTimeout(timer);
          if (!m.ready) {
            this.giveUp(new Error(m.error));
            return resolve(false);
          }
          ready = true;
          this.worker = worker;
          worker.unref();
          return resolve(true);
        }
        this.answer(m as Packed | Failed);
      });
      worker.on('error', (err) => {
        clearTimeout(timer);
        this.giveUp(err);
        resolve(false);
      });
      worker.on('exit', () => {
        clearTimeout(timer);
        if (this.worker === worker) {
          // Ended without stop(): the reads in flight fail (their catch-ups retry) and later ones stay local.
          this.worker = undefined;
          this.giveUp(new Error('the read thread exited'));
        }
        resolve(ready);
      });
    });
  }

  private answer(m: Packed | Failed): void {
    const p = this.pending.shift();
    if (!p) return;
    if (this.pending.length === 0) this.worker?.unref();
    if (p.id !== m.id) {
      p.reject(new StoreUnavailableError('embedded read thread answered out of order'));
      return;
    }
    if ('error' in m) {
      const err = new StoreUnavailableError(`embedded event log read failed: ${m.error}`);
      p.reject(err);
      return;
    }
    p.resolve(unpack(m));
  }

  private giveUp(err: unknown): void {
    if (!this.failed) {
      this.logger.warn(
        { err: (err as Error)?.message ?? String(err) },
        'embedded event log: the read thread is not available; catch-up reads run on the event loop',
      );
    }
    this.failed = true;
    this.failAll(new StoreUnavailableError('embedded read thread stopped'));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}

/** Rows as StoredEvents whose `data` are views into the one transferred buffer. */
function unpack(m: Packed): StoredEvent[] {
  const out = new Array<StoredEvent>(m.n);
  const buf = m.data.buffer;
  const base = m.data.byteOffset;
  let start = 0;
  for (let i = 0; i < m.n; i++) {
    const end = m.ends[i];
    out[i] = {
      seq: m.seqs[i],
      subject: m.subjects[m.subjectOf[i]],
      time: m.times[i],
      data: new Uint8Array(buf, base + start, end - start),
    };
    start = end;
  }
  return out;
}
