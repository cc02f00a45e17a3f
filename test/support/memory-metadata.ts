/** An in-memory metadata store for unit tests: same semantics as the port (revisions, conflicts, key order). */
import type { MetadataBucket, MetadataEntry, MetadataStore } from '../../src/outbound/metadata.js';

export class MetadataConflict extends Error {}

export class MemoryMetadataStore implements MetadataStore {
  readonly buckets = new Map<string, MemoryBucket>();
  /** When set, every call throws it (the store is unreachable). */
  failWith?: Error;

  async bucket(name: string): Promise<MetadataBucket> {
    let b = this.buckets.get(name);
    if (!b) {
      b = new MemoryBucket(this);
      this.buckets.set(name, b);
    }
    return b;
  }
}

class MemoryBucket implements MetadataBucket {
  private readonly entries = new Map<string, MetadataEntry>();
  private revision = 0;

  constructor(private readonly owner: MemoryMetadataStore) {}

  private check(): void {
    if (this.owner.failWith) throw this.owner.failWith;
  }

  async get(key: string): Promise<MetadataEntry | null> {
    this.check();
    return this.entries.get(key) ?? null;
  }
  async create(key: string, value: string): Promise<number> {
    this.check();
    if (this.entries.has(key)) throw new MetadataConflict(`${key} exists`);
    return this.put(key, value);
  }
  async update(key: string, value: string, revision: number): Promise<number> {
    this.check();
    if (this.entries.get(key)?.revision !== revision) throw new MetadataConflict(`${key} changed`);
    return this.put(key, value);
  }
  async put(key: string, value: string): Promise<number> {
    this.check();
    const revision = ++this.revision;
    this.entries.set(key, { key, value, revision });
    return revision;
  }
  async delete(key: string): Promise<void> {
    this.check();
    this.entries.delete(key);
  }
  async list(prefix = ''): Promise<MetadataEntry[]> {
    this.check();
    return [...this.entries.values()].filter((e) => e.key.startsWith(prefix)).sort((a, b) => (a.key < b.key ? -1 : 1));
  }
}
