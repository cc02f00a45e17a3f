// @ts-check
/**
 * The embedded log's read thread (a worker_threads Worker started by embedded-read-thread.ts): it owns its own
 * read-only SQLite connection to the log file and runs catch-up statements there, so a deep replay's SQLite
 * work no longer runs on the event loop that serves ingest and live fan-out.
 *
 * Plain JavaScript (type-checked from its JSDoc): a worker is loaded by file, not imported, and this one must
 * load the same way from src/ (tests) and from dist/ (the build copies it as it is).
 *
 * One request at a time, answered in order: `{ id, from, to, limit, literal }` or `{ id, from, to, limit, glob }`
 * asks for the rows in seqs `[from, to]` whose subject equals `literal` or matches `glob` (the SQL pre-filter),
 * at most `limit`, in seq order. The answer packs them into a few transferable arrays (no copy on the way
 * back, no object per row): `{ id, n, seqs, times, subjects, ends, data }`, row i's bytes being
 * `data[ends[i-1] ?? 0 .. ends[i]]`. A failed statement answers `{ id, error, code }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, literalSql, globSql } = /** @type {{ file: string, literalSql: string, globSql: string }} */ (workerData);
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

let db;
try {
  // Read-only: this connection never takes the write lock. WAL lets it read while the gateway appends.
  db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('cache_size = -16384');
} catch (err) {
  port.postMessage({ ready: false, error: /** @type {Error} */ (err).message });
  process.exit(0);
}
const literal = db.prepare(literalSql).raw(true);
const glob = db.prepare(globSql).raw(true);
port.postMessage({ ready: true });

/**
 * @typedef {{ id: number, from: number, to: number, limit: number, literal?: string, glob?: string }} Request
 * @typedef {[number, string, number, Uint8Array]} Row  seq, subject, time, data
 */

port.on('message', (/** @type {Request | 'close'} */ req) => {
  if (req === 'close') {
    db.close();
    port.close();
    return;
  }
  let rows;
  try {
    rows = /** @type {Row[]} */ (
      req.literal !== undefined
        ? literal.all(req.literal, req.from, req.to, req.limit)
        : glob.all(req.from, req.to, req.glob, req.limit)
    );
  } catch (err) {
    const e = /** @type {Error & { code?: string }} */ (err);
    port.postMessage({ id: req.id, error: e.message, code: e.code });
    return;
  }
  const n = rows.length;
  const seqs = new Float64Array(n);
  const times = new Float64Array(n);
  const ends = new Uint32Array(n);
  /** @type {string[]} */
  const subjects = new Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += rows[i][3].length;
  // Not from Buffer's shared pool: the whole ArrayBuffer is handed over.
  const data = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    seqs[i] = r[0];
    subjects[i] = r[1];
    times[i] = r[2];
    data.set(r[3], at);
    at += r[3].length;
    ends[i] = at;
  }
  port.postMessage({ id: req.id, n, seqs, times, subjects, ends, data }, [
    seqs.buffer,
    times.buffer,
    ends.buffer,
    data.buffer,
  ]);
});
