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
 * back, no object per row): `{ id, n, seqs, times, subjects, subjectOf, ends, data }`, row i's subject being
 * `subjects[subjectOf[i]]` (each distinct subject once: a window's rows mostly share a few) and its bytes
 * `data[ends[i-1] ?? 0 .. ends[i]]`. A failed statement answers `{ id, error, code }`.
 *
 * Each window is two statements in one read transaction (one snapshot): the rows' seq, subject, time and payload
 * size, then all their payloads concatenated by SQLite into one blob, which becomes `data` as it is. Asking for
 * the payloads row by row made a buffer per row here and copied each into `data` again. A window whose payloads
 * add up to more than BLOB_MAX bytes is still read row by row (`rows`): SQLite refuses a blob over its length
 * limit (1e9 bytes by default), and a window that always failed would stop its catch-up.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, literalSql, globSql, blobMax } =
  /** @type {{ file: string, literalSql: string[], globSql: string[], blobMax?: number }} */ (workerData);
/** Payload bytes of a window above which its payloads are read row by row instead of as one blob. */
const BLOB_MAX = blobMax ?? 64 * 1024 * 1024;
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
/**
 * Each pre-filter's statements, with the same parameters: the rows without payload, their payloads as one blob,
 * and the rows with their payloads (for a window too large for one blob).
 */
const prepare = (/** @type {string[]} */ sql) => ({
  heads: db.prepare(sql[0]).raw(true),
  data: db.prepare(sql[1]).pluck(),
  rows: db.prepare(sql[2]).raw(true),
});
const literal = prepare(literalSql);
const glob = prepare(globSql);
port.postMessage({ ready: true });

/**
 * @typedef {{ id: number, from: number, to: number, limit: number, literal?: string, glob?: string }} Request
 * @typedef {[number, string, number, number]} Head  seq, subject, time, payload bytes
 */

/** One window's heads and payload blob, read in one transaction so both see the same rows. */
const readWindow = db.transaction((/** @type {Request} */ req) => {
  const st = req.literal !== undefined ? literal : glob;
  /** @type {unknown[]} */
  const args =
    req.literal !== undefined ? [req.literal, req.from, req.to, req.limit] : [req.from, req.to, req.glob, req.limit];
  const heads = /** @type {Head[]} */ (st.heads.all(...args));
  if (heads.length === 0) return { heads, blob: null };
  let total = 0;
  for (const h of heads) total += h[3];
  if (total <= BLOB_MAX) return { heads, blob: /** @type {Buffer | null} */ (st.data.get(...args)) };
  const rows = /** @type {[number, string, number, Uint8Array][]} */ (st.rows.all(...args));
  const blob = new Uint8Array(total);
  let at = 0;
  for (const r of rows) {
    if (at + r[3].length > total) return { heads, blob: null }; // not the rows the heads said: fails below
    blob.set(r[3], at);
    at += r[3].length;
  }
  return { heads, blob: at === total ? blob : null };
});

port.on('message', (/** @type {Request | 'close'} */ req) => {
  if (req === 'close') {
    db.close();
    port.close();
    return;
  }
  let heads;
  /** @type {Uint8Array | null} */
  let blob;
  try {
    ({ heads, blob } = readWindow(req));
  } catch (err) {
    const e = /** @type {Error & { code?: string }} */ (err);
    port.postMessage({ id: req.id, error: e.message, code: e.code });
    return;
  }
  const n = heads.length;
  const seqs = new Float64Array(n);
  const times = new Float64Array(n);
  const ends = new Uint32Array(n);
  const subjectOf = new Uint32Array(n);
  /** @type {string[]} */
  const subjects = [];
  /** @type {Map<string, number>} */
  const index = new Map();
  let last = '';
  let lastIndex = -1;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const h = heads[i];
    seqs[i] = h[0];
    const subject = h[1];
    if (subject !== last || lastIndex < 0) {
      let k = index.get(subject);
      if (k === undefined) {
        k = subjects.length;
        subjects.push(subject);
        index.set(subject, k);
      }
      last = subject;
      lastIndex = k;
    }
    subjectOf[i] = lastIndex;
    times[i] = h[2];
    at += h[3];
    ends[i] = at;
  }
  const got = blob?.length ?? 0;
  if (got !== at) {
    // Never expected in one snapshot; the window fails (and is read again) rather than cut payloads wrongly.
    port.postMessage({ id: req.id, error: `window payloads are ${got} bytes, their rows say ${at}` });
    return;
  }
  // The whole ArrayBuffer is handed over: the blob's own when it has one, else a copy (never Buffer's pool).
  /** @type {Uint8Array<ArrayBuffer>} */
  let data;
  if (!blob) data = new Uint8Array(0);
  else if (blob.byteOffset === 0 && blob.buffer instanceof ArrayBuffer && blob.buffer.byteLength === blob.length) {
    data = new Uint8Array(blob.buffer, 0, blob.length);
  } else data = new Uint8Array(blob);
  port.postMessage({ id: req.id, n, seqs, times, subjects, subjectOf, ends, data }, [
    seqs.buffer,
    times.buffer,
    subjectOf.buffer,
    ends.buffer,
    data.buffer,
  ]);
});
