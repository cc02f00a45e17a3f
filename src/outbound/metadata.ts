/**
 * The slice of the event store's metadata port that outbound webhooks use (a key-value bucket with revisions).
 * Declared here structurally until the store's own port is merged; the store's implementation satisfies it.
 */
export interface MetadataEntry {
  key: string;
  value: string;
  revision: number;
}

export interface MetadataBucket {
  get(key: string): Promise<MetadataEntry | null>;
  create(key: string, value: string): Promise<number>;
  update(key: string, value: string, revision: number): Promise<number>;
  put(key: string, value: string): Promise<number>;
  delete(key: string): Promise<void>;
  list(prefix?: string): Promise<MetadataEntry[]>;
}

export interface MetadataStore {
  bucket(name: string): Promise<MetadataBucket>;
}
