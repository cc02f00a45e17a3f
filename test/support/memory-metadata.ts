/**
 * An in-memory metadata bucket with the port's semantics (create-if-absent, compare-and-set on the revision,
 * prefix listing in key order), for unit tests of code built on it. Each call yields to the event loop first, as
 * a real store's round trip does, so concurrent callers really interleave.
 */
export class MemoryConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataConflictError';
  }
}

export interface MemoryEntry {
  key: string;
  value: string;
  revision: number;
}

export class MemoryMetadataBucket {
  private readonly entries = new Map<string, MemoryEntry>();
  private revision = 0;
  /** Set to make every call fail as an unreachable store would. */
  down = false;

  private async turn(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    if (this.down) throw Object.assign(new Error('store unavailable'), { name: 'StoreUnavailableError' });
  }

  async get(key: string): Promise<MemoryEntry | null> {
    await this.turn();
    return this.entries.get(key) ?? null;
  }

  async create(key: string, value: string): Promise<number> {
    await this.turn();
    if (this.entries.has(key)) throw new MemoryConflictError(`${key} exists`);
    return this.write(key, value);
  }

  async update(key: string, value: string, revision: number): Promise<number> {
    await this.turn();
    if (this.entries.get(key)?.revision !== revision) throw new MemoryConflictError(`${key} changed`);
    return this.write(key, value);
  }

  async put(key: string, value: string): Promise<number> {
    await this.turn();
    return this.write(key, value);
  }

  async delete(key: string): Promise<void> {
    await this.turn();
    this.entries.delete(key);
  }

  async list(prefix = ''): Promise<MemoryEntry[]> {
    await this.turn();
    return [...this.entries.values()]
      .filter((e) => e.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private write(key: string, value: string): number {
    this.revision += 1;
    this.entries.set(key, { key, value, revision: this.revision });
    return this.revision;
  }
}
