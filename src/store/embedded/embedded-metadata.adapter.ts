/**
 * The metadata port on the embedded log's SQLite file: one `metadata` table for every bucket, revisions from one
 * counter (layout in embedded-schema.ts). It runs on the event store's own connection (the file is locked to it),
 * and each call is one synchronous transaction, so check-and-write cannot interleave with another writer.
 */
import type Database from 'better-sqlite3';
import { StoreUnavailableError } from '../event-store.port.js';
import {
  assertBucketName,
  assertKeyPrefix,
  assertMetadataKey,
  assertRevision,
  assertValue,
  MetadataConflictError,
  type MetadataBucket,
  type MetadataEntry,
  type MetadataStore,
} from '../metadata.port.js';
import type { EmbeddedDatabase } from './embedded-database.js';
import { METADATA_SQL } from './embedded-schema.js';
import type { StatementsOf } from './embedded-util.js';

type Statements = StatementsOf<typeof METADATA_SQL>;

export class EmbeddedMetadataStore implements MetadataStore {
  /** Works on the event store's connection; its statements are prepared on it, again after a restart. */
  constructor(private readonly database: EmbeddedDatabase) {}

  async bucket(name: string): Promise<MetadataBucket> {
    assertBucketName(name);
    this.statements(); // unavailable now: say so now, as the JetStream adapter does
    return new EmbeddedMetadataBucket(name, (what, fn) => this.run(what, fn));
  }

  private statements(): { db: Database.Database; st: Statements } {
    return this.database.prepared(METADATA_SQL);
  }

  /** Runs `fn` in one transaction; SQLite failures become StoreUnavailableError, conflicts pass through. */
  private run<T>(what: string, fn: (st: Statements) => T): T {
    const { db, st } = this.statements();
    try {
      return db.transaction(() => fn(st))();
    } catch (err) {
      if (err instanceof MetadataConflictError) throw err;
      throw new StoreUnavailableError(`embedded metadata ${what} failed: ${(err as Error).message}`, { cause: err });
    }
  }
}

class EmbeddedMetadataBucket implements MetadataBucket {
  constructor(
    private readonly name: string,
    private readonly run: <T>(what: string, fn: (st: Statements) => T) => T,
  ) {}

  async get(key: string): Promise<MetadataEntry | null> {
    assertMetadataKey(key);
    return this.run('get', (st) => (st.get.get(this.name, key) as MetadataEntry | undefined) ?? null);
  }

  async create(key: string, value: string): Promise<number> {
    assertMetadataKey(key);
    assertValue(value);
    return this.run('create', (st) => {
      if (st.get.get(this.name, key)) throw new MetadataConflictError(`${this.name}: key ${key} already exists`);
      const revision = nextRevision(st);
      st.insert.run(this.name, key, value, revision);
      return revision;
    });
  }

  async update(key: string, value: string, revision: number): Promise<number> {
    assertMetadataKey(key);
    assertValue(value);
    assertRevision(revision);
    return this.run('update', (st) => {
      const current = st.get.get(this.name, key) as MetadataEntry | undefined;
      if (current?.revision !== revision) {
        const found = current ? `revision ${current.revision}` : 'no such key';
        throw new MetadataConflictError(`${this.name}: key ${key} is not at revision ${revision} (${found})`);
      }
      const next = nextRevision(st);
      st.update.run(value, next, this.name, key, revision);
      return next;
    });
  }

  async put(key: string, value: string): Promise<number> {
    assertMetadataKey(key);
    assertValue(value);
    return this.run('put', (st) => {
      const revision = nextRevision(st);
      st.upsert.run(this.name, key, value, revision);
      return revision;
    });
  }

  async delete(key: string): Promise<void> {
    assertMetadataKey(key);
    this.run('delete', (st) => st.delete.run(this.name, key));
  }

  async list(prefix = ''): Promise<MetadataEntry[]> {
    assertKeyPrefix(prefix);
    return this.run('list', (st) => st.list.all(this.name, prefix, `${prefix}\x7f`) as MetadataEntry[]);
  }
}

function nextRevision(st: Statements): number {
  return (st.nextRevision.get() as { last: number }).last;
}
