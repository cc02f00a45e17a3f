/**
 * The metadata port: small named key-value buckets kept beside the event log, for records that every replica
 * must share and that must outlive a restart (registered endpoints, schema versions, …).
 *
 * JetStream keeps one KV bucket per name (history 1, the stream's replica count); the embedded log keeps a table
 * in its own SQLite file. Writes are optimistic: `create` and `update` fail with MetadataConflictError when
 * another writer got there first, so a caller re-reads and tries again instead of overwriting blindly.
 *
 * Revisions are positive integers that only grow within a store (JetStream: the bucket's stream sequence;
 * embedded: one counter for all buckets). A key that is deleted and created again gets a new revision, so a
 * writer holding the old one cannot update the new value.
 */

export interface MetadataEntry {
  key: string;
  value: string;
  revision: number;
}

export interface MetadataBucket {
  get(key: string): Promise<MetadataEntry | null>;
  /** Creates the key; throws MetadataConflictError when it exists. Resolves to the new revision. */
  create(key: string, value: string): Promise<number>;
  /** Replaces the value only while the key's revision is still `revision`; else MetadataConflictError. */
  update(key: string, value: string, revision: number): Promise<number>;
  put(key: string, value: string): Promise<number>;
  /** Removes the key (no error when absent). */
  delete(key: string): Promise<void>;
  /** Every live entry whose key starts with `prefix` (all when omitted), in key order. */
  list(prefix?: string): Promise<MetadataEntry[]>;
}

export interface MetadataStore {
  /** Opens (creating when needed) a named bucket: name [a-z0-9_]+, keys [A-Za-z0-9_=.-]+ ('.' separates parts). */
  bucket(name: string): Promise<MetadataBucket>;
}

/** A create found the key present, or an update found another revision (or no key): re-read, then retry. */
export class MetadataConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataConflictError';
  }
}

const BUCKET_NAME = /^[a-z0-9_]+$/;
/** Parts of [A-Za-z0-9_=-], joined by single dots: no empty part (JetStream keys are NATS subject tokens). */
const KEY = /^[A-Za-z0-9_=-]+(\.[A-Za-z0-9_=-]+)*$/;
/** A list prefix may stop anywhere in a key, including right after a dot. */
const KEY_PREFIX = /^([A-Za-z0-9_=-]+\.)*[A-Za-z0-9_=-]*$/;

export function isMetadataBucketName(name: unknown): name is string {
  return typeof name === 'string' && BUCKET_NAME.test(name);
}

export function isMetadataKey(key: unknown): key is string {
  return typeof key === 'string' && KEY.test(key);
}

/** Caller bugs, not store failures: thrown by every adapter the same way. */
export function assertBucketName(name: unknown): asserts name is string {
  if (!isMetadataBucketName(name)) {
    throw new RangeError(`invalid metadata bucket name ${JSON.stringify(name)}: must match [a-z0-9_]+`);
  }
}

export function assertMetadataKey(key: unknown): asserts key is string {
  if (!isMetadataKey(key)) {
    throw new RangeError(`invalid metadata key ${JSON.stringify(key)}: parts of [A-Za-z0-9_=-] separated by '.'`);
  }
}

export function assertKeyPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== 'string' || !KEY_PREFIX.test(prefix)) {
    throw new RangeError(`invalid metadata key prefix ${JSON.stringify(prefix)}`);
  }
}

export function assertValue(value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new TypeError('a metadata value must be a string');
}

export function assertRevision(revision: unknown): asserts revision is number {
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision <= 0) {
    throw new RangeError(`invalid metadata revision ${String(revision)}: a positive integer`);
  }
}
