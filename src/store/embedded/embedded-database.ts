/**
 * The embedded log's writing SQLite connection: opening the file in DATA_DIR with its pragmas, the directory lock,
 * the layout check, the epoch, and the log's counters kept in memory beside the file.
 *
 * Every write goes through this connection (every part of the store, the metadata buckets included, works through
 * this object). The only other connection is the read thread's read-only one (embedded-read-thread.ts), which WAL
 * lets read while this one writes.
 *
 * The directory lock: a small SQLite file beside the log (LOCK_FILE), written once in EXCLUSIVE locking mode and held
 * open, so its lock lasts as long as the store is open and goes with the process however it ends. A second store
 * (in this process or another) fails to take it and is refused before it touches the log.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import Database from 'better-sqlite3';
import { StoreLockedError, StoreUnavailableError, type StreamState } from '../event-store.port.js';
import { DB_FILE, LOCK_FILE, LOCK_PRAGMAS, PRAGMAS, SCHEMA_SQL, SCHEMA_VERSION, SQL } from './embedded-schema.js';
import { readFailed, type StatementsOf } from './embedded-util.js';

/** The log's own statements, prepared when the file is opened. */
export type Statements = StatementsOf<typeof SQL>;

interface MetaRow {
  schema_version: number;
  epoch: string;
  last_seq: number;
  total_bytes: number;
}

const EPOCH_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

function newEpoch(): string {
  let s = '';
  for (let i = 0; i < 12; i++) s += EPOCH_ALPHABET[randomInt(EPOCH_ALPHABET.length)];
  return s;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

function prepareAll<T extends Record<string, string>>(db: Database.Database, sql: T): StatementsOf<T> {
  return Object.fromEntries(Object.entries(sql).map(([k, s]) => [k, db.prepare(s)])) as StatementsOf<T>;
}

export class EmbeddedDatabase {
  private _db: Database.Database | undefined;
  /** The directory lock's connection, held open while the store is. */
  private lock: Database.Database | undefined;
  private st: Statements | undefined;
  /** Statement sets other parts asked for (prepared()), on the current connection; dropped with it. */
  private readonly extra = new Map<object, unknown>();

  // The log's counters: read at open, advanced by the appender after each commit, lowered by retention and purge.
  epoch = '';
  lastSeq = 0;
  totalBytes = 0;
  /** Time of the newest event: event times never go backwards, even if the wall clock does. */
  lastTime = 0;

  constructor(
    private readonly dir: string,
    private readonly now: () => number,
  ) {}

  /** The log file's path. */
  get file(): string {
    return join(this.dir, DB_FILE);
  }

  /** The open connection, or undefined while the store is stopped. */
  get db(): Database.Database | undefined {
    return this._db;
  }

  /** Opens the file (once), takes the directory lock, checks the layout and reads the counters. */
  open(): void {
    let db: Database.Database | undefined;
    let lock: Database.Database | undefined;
    try {
      mkdirSync(this.dir, { recursive: true });
      // timeout 0: a held lock is refused at once instead of after better-sqlite3's default 5 s wait.
      lock = new Database(join(this.dir, LOCK_FILE), { timeout: 0 });
      for (const p of LOCK_PRAGMAS) lock.pragma(p);
      // A write takes the lock file's exclusive lock, kept until close (a read would only take a shared one).
      lock.exec('CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL)');
      lock.prepare('INSERT OR REPLACE INTO holder (id, pid) VALUES (1, ?)').run(process.pid);
      db = new Database(this.file, { timeout: 0 });
      for (const p of PRAGMAS) db.pragma(p);
      const mode = db.pragma('journal_mode', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, expected wal`);
      // A process of an older build holds the log itself exclusively: a write here fails at start, not later.
      db.exec('BEGIN IMMEDIATE; COMMIT');
      this.load(db);
      this.lock = lock;
    } catch (err) {
      this._db = undefined;
      this.st = undefined;
      db?.close();
      lock?.close();
      if (isBusy(err)) throw new StoreLockedError(`data directory ${this.dir} is locked by another Hookstream process`);
      if (err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`cannot open the embedded log in ${this.dir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  private load(db: Database.Database): void {
    db.exec(SCHEMA_SQL);
    const st = prepareAll(db, SQL);
    let meta = st.readMeta.get() as MetaRow | undefined;
    if (!meta) {
      st.insertMeta.run(SCHEMA_VERSION, newEpoch(), this.now());
      meta = st.readMeta.get() as MetaRow;
    }
    if (meta.schema_version !== SCHEMA_VERSION) {
      throw new StoreUnavailableError(
        `${join(this.dir, DB_FILE)} has layout version ${meta.schema_version}, this build reads ${SCHEMA_VERSION}`,
      );
    }
    const last = st.lastEvent.get() as { seq: number; time: number } | undefined;
    this._db = db;
    this.st = st;
    this.epoch = meta.epoch;
    this.lastSeq = Math.max(meta.last_seq, last?.seq ?? 0);
    this.totalBytes = meta.total_bytes;
    this.lastTime = last?.time ?? 0;
  }

  /** Detaches the connection at once (the parts see a stopped store from here on) and closes it. */
  close(): void {
    const db = this._db;
    this._db = undefined;
    this.st = undefined;
    this.extra.clear();
    db?.close(); // the last connection to the log: checkpoints the WAL
    const lock = this.lock;
    this.lock = undefined;
    lock?.close(); // releases the directory lock
  }

  /** The connection with the log's statements, or undefined while the store is stopped. */
  current(): { db: Database.Database; st: Statements } | undefined {
    return this._db && this.st ? { db: this._db, st: this.st } : undefined;
  }

  /** The connection with the log's statements, or StoreUnavailableError while the store is stopped. */
  connection(): { db: Database.Database; st: Statements } {
    const c = this.current();
    if (!c) throw new StoreUnavailableError('embedded event log is not open');
    return c;
  }

  /** The log's statements, or StoreUnavailableError while the store is stopped. */
  statements(): Statements {
    return this.connection().st;
  }

  /**
   * Another part's statements (`{ name: sql }`, tables in embedded-schema.ts), prepared once per connection, with
   * the connection for its transactions; StoreUnavailableError while the store is stopped.
   */
  prepared<T extends Record<string, string>>(sql: T): { db: Database.Database; st: StatementsOf<T> } {
    const db = this._db;
    if (!db?.open) throw new StoreUnavailableError('embedded event log is not open');
    let st = this.extra.get(sql) as StatementsOf<T> | undefined;
    if (!st) {
      st = prepareAll(db, sql);
      this.extra.set(sql, st);
    }
    return { db, st };
  }

  state(): StreamState {
    const st = this.statements();
    try {
      const first = st.firstSeq.pluck().get() as number | undefined;
      return { epoch: this.epoch, firstSeq: first ?? this.lastSeq + 1, lastSeq: this.lastSeq };
    } catch (err) {
      throw readFailed(err);
    }
  }
}
