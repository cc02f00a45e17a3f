/**
 * The metadata port in memory, for unit tests: the same semantics as the store adapters (conflicts, one revision
 * counter, key order, validation), and unavailable whenever its event store is.
 */
import { StoreUnavailableError } from '../../src/store/event-store.port.js';
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
} from '../../src/store/metadata.port.js';

export class MemoryMetadataStore implements MetadataStore {
  private readonly buckets = new Map<string, Map<string, MetadataEntry>>();
  private lastRevision = 0;

  constructor(private readonly available: () => boolean = () => true) {}

  async bucket(name: string): Promise<MetadataBucket> {
    assertBucketName(name);
    this.check();
    let entries = this.buckets.get(name);
    if (!entries) this.buckets.set(name, (entries = new Map()));
    return this.bucketOver(name, entries);
  }

  private check(): void {
    if (!this.available()) throw new StoreUnavailableError('memory store is unavailable');
  }

  private bucketOver(name: string, entries: Map<string, MetadataEntry>): MetadataBucket {
    const write = (key: string, value: string): number => {
      const revision = ++this.lastRevision;
      entries.set(key, { key, value, revision });
      return revision;
    };
    return {
      get: async (key) => {
        assertMetadataKey(key);
        this.check();
        const e = entries.get(key);
        return e ? { ...e } : null;
      },
      create: async (key, value) => {
        assertMetadataKey(key);
        assertValue(value);
        this.check();
        if (entries.has(key)) throw new MetadataConflictError(`${name}: key ${key} already exists`);
        return write(key, value);
      },
      update: async (key, value, revision) => {
        assertMetadataKey(key);
        assertValue(value);
        assertRevision(revision);
        this.check();
        if (entries.get(key)?.revision !== revision) {
          throw new MetadataConflictError(`${name}: key ${key} is not at revision ${revision}`);
        }
        return write(key, value);
      },
      put: async (key, value) => {
        assertMetadataKey(key);
        assertValue(value);
        this.check();
        return write(key, value);
      },
      delete: async (key) => {
        assertMetadataKey(key);
        this.check();
        entries.delete(key);
      },
      list: async (prefix = '') => {
        assertKeyPrefix(prefix);
        this.check();
        return [...entries.values()]
          .filter((e) => e.key.startsWith(prefix))
          .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
          .map((e) => ({ ...e }));
      },
    };
  }
}
