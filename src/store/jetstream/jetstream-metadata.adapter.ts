/**
 * The metadata port on JetStream: one KV bucket per name, `<stream>-md-<name>` (stream names cannot hold a dot and
 * metadata names cannot hold a '-', so gateways on different streams never share a bucket), history 1, the event
 * stream's replica count, on the event store's own connection.
 *
 * Revisions are the bucket stream's sequences. `create` and `update` publish with an expected last subject
 * sequence, so the server decides conflicts; a deleted key leaves a delete marker (history 1 drops the value).
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
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
import { unavailable, withTimeout } from './jetstream-util.js';

export interface JetStreamMetadataDeps {
  /** The event store's client now, or StoreUnavailableError while NATS is unreachable. */
  js: () => JetStreamClient;
  streamName: string;
  replicas: number;
  /** Upper bound for one call (a listing is many requests); single requests time out earlier in the client. */
  timeoutMs: number;
}

/** The KV bucket that holds metadata bucket `name` for this stream. */
export function metadataBucketName(streamName: string, name: string): string {
  return `${streamName}-md-${name}`;
}

function isConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** The bucket's stream is gone (e.g. a nats-server that lost its store): open it again on the next call. */
function isBucketLost(err: unknown): boolean {
  if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return true;
  return err instanceof Error && /stream not found|no responders|not enabled/i.test(err.message);
}

export class JetStreamMetadataStore implements MetadataStore {
  private readonly buckets = new Map<string, JetStreamMetadataBucket>();

  constructor(private readonly deps: JetStreamMetadataDeps) {}

  async bucket(name: string): Promise<MetadataBucket> {
    assertBucketName(name);
    let bucket = this.buckets.get(name);
    if (!bucket) {
      bucket = new JetStreamMetadataBucket(metadataBucketName(this.deps.streamName, name), this.deps);
      this.buckets.set(name, bucket);
    }
    await bucket.open();
    return bucket;
  }
}

class JetStreamMetadataBucket implements MetadataBucket {
  private handle?: { js: JetStreamClient; kv: Promise<KV> };

  constructor(
    private readonly kvName: string,
    private readonly deps: JetStreamMetadataDeps,
  ) {}

  /** The KV handle, creating the bucket when it does not exist (Kvm.create opens an existing one as it is). */
  open(): Promise<KV> {
    const js = this.deps.js();
    if (this.handle?.js !== js) {
      const kv = new Kvm(js).create(this.kvName, { history: 1, replicas: this.deps.replicas });
      const handle = { js, kv };
      this.handle = handle;
      kv.catch(() => {
        if (this.handle === handle) this.handle = undefined;
      });
    }
    return withTimeout(this.handle.kv, this.deps.timeoutMs, `opening KV bucket ${this.kvName}`).catch((err) => {
      throw unavailable(`opening KV bucket ${this.kvName} failed`, err);
    });
  }

  /** Runs one operation; maps JetStream's answers onto the port's errors. */
  private async call<T>(what: string, op: (kv: KV) => Promise<T>): Promise<T> {
    const kv = await this.open();
    try {
      return await withTimeout(op(kv), this.deps.timeoutMs, `${what} in ${this.kvName}`);
    } catch (err) {
      if (isConflict(err)) throw new MetadataConflictError(`${this.kvName}: ${what}: ${(err as Error).message}`);
      // The client refuses a message over the server's max_payload (1 MB by default) before sending it.
      if (err instanceof Error && err.name === 'InvalidArgumentError') {
        throw new RangeError(`${what} in KV bucket ${this.kvName}: ${err.message}`, { cause: err });
      }
      if (isBucketLost(err)) this.handle = undefined;
      throw unavailable(`${what} in KV bucket ${this.kvName} failed`, err);
    }
  }

  async get(key: string): Promise<MetadataEntry | null> {
    assertMetadataKey(key);
    return this.call(`get ${key}`, async (kv) => liveEntry(await kv.get(key)));
  }

  async create(key: string, value: string): Promise<number> {
    assertMetadataKey(key);
    assertValue(value);
    return this.call(`create ${key}`, (kv) => kv.create(key, value));
  }

  async update(key: string, value: string, revision: number): Promise<number> {
    assertMetadataKey(key);
    assertValue(value);
    assertRevision(revision);
    // A deleted key's marker has a revision no caller was given, so updating a deleted key conflicts.
    return this.call(`update ${key}@${revision}`, (kv) => kv.update(key, value, revision));
  }

  async put(key: string, value: string): Promise<number> {
    assertMetadataKey(key);
    assertValue(value);
    return this.call(`put ${key}`, (kv) => kv.put(key, value));
  }

  async delete(key: string): Promise<void> {
    assertMetadataKey(key);
    await this.call(`delete ${key}`, (kv) => kv.delete(key));
  }

  async list(prefix = ''): Promise<MetadataEntry[]> {
    assertKeyPrefix(prefix);
    let listing: QueuedIterator<string> | undefined;
    try {
      return await this.call(`list ${prefix || '*'}`, async (kv) => {
        listing = await kv.keys(keyFilter(prefix));
        const keys: string[] = [];
        for await (const key of listing) if (key.startsWith(prefix)) keys.push(key);
        keys.sort();
        // A key deleted between the listing and its get is left out: it is no longer live.
        const entries = await Promise.all(keys.map(async (key) => liveEntry(await kv.get(key))));
        return entries.filter((e): e is MetadataEntry => e !== null);
      });
    } finally {
      // A listing cut short (timeout, lost connection) would otherwise keep its consumer and heartbeat timer.
      listing?.stop();
    }
  }
}

/**
 * The subject filter that covers every key starting with `prefix`: its complete parts, then `>`. The last part
 * may be partial ('v' of 'v12'), so the caller still checks the prefix itself.
 */
export function keyFilter(prefix: string): string {
  const parts = prefix.split('.');
  parts.pop();
  return parts.length ? `${parts.join('.')}.>` : '>';
}

function liveEntry(e: KvEntry | null): MetadataEntry | null {
  if (!e || e.operation !== 'PUT') return null;
  return { key: e.key, value: e.string(), revision: e.revision };
}
