/**
 * The embedded log's on-disk layout: pragmas, schema and statements, in one place so the adapter reads as
 * logic and the layout can be reviewed (and versioned) on its own.
 */

export const DB_FILE = 'hookstream.db';
/** The directory lock (embedded-database.ts): a tiny SQLite file whose exclusive lock the open store holds. */
export const LOCK_FILE = 'hookstream.lock';

/** Bumped when the layout changes incompatibly; a file with another version is refused, not migrated. */
export const SCHEMA_VERSION = 1;

/**
 * Applied in this order on open, before any other access.
 *
 * - `journal_mode=WAL`, in the normal locking mode: readers (the read thread's own connection) read while the
 *   writer appends, through the `-shm` index. Who may write is decided by the directory lock (LOCK_PRAGMAS), not
 *   by holding this file exclusively, which would shut every other connection out, readers included.
 * - `synchronous=FULL`: fsync the WAL on every commit. NORMAL already survives a kill -9 (the WAL frames are in
 *   the OS page cache once `write()` returns); FULL also survives power loss and kernel panics, which is what
 *   "a 2xx is never sent for an event that is not durably stored" means. With group commit it costs one fsync
 *   per batch, not per event. Measured through this adapter on the dev box (ext4 on virtio, 2 cores, 512-byte
 *   events with msgIds, 100k appends from 200 concurrent callers): ~125k events/s with FULL, ~130k/s with
 *   NORMAL, i.e. within noise. Only strictly sequential appends (one in flight) feel it: ~6.7k/s vs ~20k/s,
 *   one fsync (~0.1 ms there, more on slower disks) per append. So FULL.
 * - `journal_size_limit`: a large retention delete can grow the WAL; truncate it back after checkpoints.
 */
export const PRAGMAS: readonly string[] = [
  'journal_mode = WAL',
  'synchronous = FULL',
  'journal_size_limit = 67108864',
  'cache_size = -16384',
  'temp_store = MEMORY',
];

/**
 * The lock file's connection: EXCLUSIVE locking keeps the lock its first write takes until the connection closes;
 * a rollback journal (not WAL) so that lock is on the file itself, where every other opener meets it.
 */
export const LOCK_PRAGMAS: readonly string[] = ['locking_mode = EXCLUSIVE', 'journal_mode = DELETE'];

/**
 * - events: `seq` is the rowid (seeks by sequence are B-tree lookups). `time` never decreases with `seq` (the
 *   appender clamps the clock), so the time index also orders by sequence.
 * - events_subject_seq serves readers filtering on one literal subject (seek, then seq order).
 * - meta: one row. `last_seq` survives deleting every event, so sequences are never reused; `total_bytes`
 *   is the sum of `length(data)`, kept in the same transactions, so size retention needs no scan.
 * - idempotency: one row per msgId; a row whose `expires_at` is past counts as absent.
 * - metadata: the metadata port's buckets (embedded-metadata.adapter.ts); a deleted key's row is removed.
 *   metadata_revision: one row, the last revision handed out, so revisions are never reused, even after the
 *   newest row is deleted. Added without a layout version bump: an older file simply gains the empty tables.
 */
export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  schema_version INTEGER NOT NULL,
  epoch TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  total_bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  subject TEXT NOT NULL,
  time INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events (time);
CREATE INDEX IF NOT EXISTS events_subject_seq ON events (subject, seq);
CREATE TABLE IF NOT EXISTS idempotency (
  msg_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS metadata (
  bucket TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  revision INTEGER NOT NULL,
  PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metadata_revision (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  last INTEGER NOT NULL
);
INSERT OR IGNORE INTO metadata_revision (id, last) VALUES (1, 0);
`;

/**
 * A catch-up window's rows, by subject (its index) or by GLOB pre-filter (a rowid scan): the one clause every
 * statement over that window shares, so the rows, their payload sizes and their payload blob are the same rows.
 */
const LITERAL_WINDOW =
  'FROM events INDEXED BY events_subject_seq WHERE subject = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?';
const GLOB_WINDOW = 'FROM events NOT INDEXED WHERE seq >= ? AND seq <= ? AND subject GLOB ? ORDER BY seq LIMIT ?';

/** Every payload of a window's rows, concatenated in seq order into one blob. */
function windowBlob(window: string): string {
  return `SELECT CAST(group_concat(data, '' ORDER BY seq) AS BLOB) FROM (SELECT seq, data ${window})`;
}

export const SQL = {
  readMeta: 'SELECT schema_version, epoch, last_seq, total_bytes FROM meta WHERE id = 1',
  insertMeta:
    'INSERT INTO meta (id, schema_version, epoch, created_at, last_seq, total_bytes) VALUES (1, ?, ?, ?, 0, 0)',
  updateMeta: 'UPDATE meta SET last_seq = ?, total_bytes = ? WHERE id = 1',
  updateBytes: 'UPDATE meta SET total_bytes = ? WHERE id = 1',

  insertEvent: 'INSERT INTO events (seq, subject, time, data) VALUES (?, ?, ?, ?)',
  firstSeq: 'SELECT seq FROM events ORDER BY seq LIMIT 1',
  lastEvent: 'SELECT seq, time FROM events ORDER BY seq DESC LIMIT 1',
  /** Oldest first, without the payload: what retention needs to decide. */
  oldest: 'SELECT seq, time, length(data) AS size FROM events ORDER BY seq',
  deleteThrough: 'DELETE FROM events WHERE seq <= ?',
  deleteAll: 'DELETE FROM events',
  seqAtTime: 'SELECT seq FROM events INDEXED BY events_time WHERE time >= ? ORDER BY time, seq LIMIT 1',
  page: 'SELECT seq, subject, time, data FROM events WHERE seq >= ? ORDER BY seq LIMIT ?',
  /**
   * Catch-up reads take a closed seq window `[from, to]`: the reader bounds `to` by its own end point and by a
   * fixed window size, so one statement never walks more than a window of the table however little matches.
   */
  pageLiteral: `SELECT seq, subject, time, data ${LITERAL_WINDOW}`,
  /** NOT INDEXED keeps the plan a rowid range scan (seq order); GLOB is a superset pre-filter, run in C. */
  pageGlob: `SELECT seq, subject, time, data ${GLOB_WINDOW}`,
  /**
   * The read thread's form of the two above: a window's rows without their payload (its size in bytes instead),
   * and every payload of the same rows as one blob, in seq order. Same parameters, run in one read transaction.
   * One blob instead of a buffer per row: each row's buffer was a third of the thread's time per event.
   */
  pageLiteralHeads: `SELECT seq, subject, time, octet_length(data) ${LITERAL_WINDOW}`,
  pageLiteralData: windowBlob(LITERAL_WINDOW),
  pageGlobHeads: `SELECT seq, subject, time, octet_length(data) ${GLOB_WINDOW}`,
  pageGlobData: windowBlob(GLOB_WINDOW),

  findKey: 'SELECT seq FROM idempotency WHERE msg_id = ? AND expires_at > ?',
  upsertKey: 'INSERT OR REPLACE INTO idempotency (msg_id, seq, expires_at) VALUES (?, ?, ?)',
  pruneKeys:
    'DELETE FROM idempotency WHERE msg_id IN (SELECT msg_id FROM idempotency WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)',
} as const;

/** The metadata port's statements (embedded-metadata.adapter.ts prepares them on the store's connection). */
export const METADATA_SQL = {
  nextRevision: 'UPDATE metadata_revision SET last = last + 1 WHERE id = 1 RETURNING last',
  get: 'SELECT key, value, revision FROM metadata WHERE bucket = ? AND key = ?',
  insert: 'INSERT INTO metadata (bucket, key, value, revision) VALUES (?, ?, ?, ?)',
  update: 'UPDATE metadata SET value = ?, revision = ? WHERE bucket = ? AND key = ? AND revision = ?',
  upsert:
    'INSERT INTO metadata (bucket, key, value, revision) VALUES (?, ?, ?, ?) ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, revision = excluded.revision',
  delete: 'DELETE FROM metadata WHERE bucket = ? AND key = ?',
  /** Key characters are ASCII below 0x7f: the range [prefix, prefix + '\x7f') holds exactly the keys with the prefix. */
  list: 'SELECT key, value, revision FROM metadata WHERE bucket = ? AND key >= ? AND key < ? ORDER BY key',
} as const;
