/**
 * Runs an e2e suite once per event store, so the JetStream and embedded adapters are held to the same
 * end-to-end behaviour (docs/architecture.md, "Two stores"). `describeEachStore(name, (backend) => …)` registers
 * the suite as
 * `name [jetstream]` (describeWithNats: skipped loudly without nats-server, failing in CI / REQUIRE_NATS=1) and
 * `name [embedded]` (no NATS needed). A case that inspects JetStream itself is registered for that backend only
 * with `itFor` / `describeFor`, so nothing is reported as skipped.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from '@jest/globals';
import type Database from 'better-sqlite3';
import { APP_CONFIG, type AppConfig } from '../../src/config/app-config.js';
import { EmbeddedEventStore } from '../../src/store/embedded/embedded-event-store.adapter.js';
import { EVENT_STORE, type EventStore, type StoredEvent, type StreamState } from '../../src/store/event-store.port.js';
import { describeWithNats, NatsServerProcess } from '../harness/nats-server.js';
import { testConfig } from './config.js';
import { startGateway, type RunningGateway } from './gateway.js';
import { envelopeId, StreamInspector } from './nats-inspect.js';

export type StoreKind = 'jetstream' | 'embedded';
export const STORE_KINDS: readonly StoreKind[] = ['jetstream', 'embedded'];

/** One stored event, parsed, with the idempotency key it was stored under. */
export interface StoredMessage {
  subject: string;
  msgId: string | undefined;
  envelope: Record<string, unknown>;
}

/** One stored event in a listing: seq, subject, idempotency key and the envelope's `id`. */
export interface StoredEntry {
  seq: number;
  subject: string;
  msgId: string | undefined;
  id: unknown;
}

/** What is stored, read past the gateway's HTTP answers: through the NATS API, or the embedded store itself. */
export interface StoreInspector {
  /** Oldest stored sequence; `lastSeq + 1` when empty. */
  firstSeq(): Promise<number>;
  lastSeq(): Promise<number>;
  count(): Promise<number>;
  get(seq: number): Promise<StoredMessage | null>;
  /** Every stored event, in order. */
  all(): Promise<StoredEntry[]>;
  close(): Promise<void>;
}

export interface TestBackend {
  readonly kind: StoreKind;
  /** jetstream: starts a nats-server of its own; embedded: a temp root for data directories. */
  setup(): Promise<void>;
  /** Stops what setup() started and removes its files. Close the gateways first. Idempotent. */
  teardown(): Promise<void>;
  /**
   * AppConfig for a gateway with this config file: NATS_URL (the stream is the file's `stream.name`), or a fresh
   * DATA_DIR; `sameStoreAs` reuses that config's DATA_DIR (a restart on the same log).
   */
  configFor(file: Record<string, unknown>, sameStoreAs?: AppConfig): AppConfig;
  /** The environment for a `GatewayProcess` on this backend: NATS_URL, or DATA_DIR (fresh, or the one given). */
  processEnv(dataDir?: string): Record<string, string>;
  /** An inspector of the store `gw` writes to (`stream` names it on JetStream). */
  inspector(gw: RunningGateway, stream: string): Promise<StoreInspector>;
  /** Deletes every stored event (sequences go on): what retention does, at once. */
  purge(gw: RunningGateway, stream: string): Promise<void>;
  /**
   * A second gateway on `owner`'s store that never saw its events live (its ring is warmed from the store).
   * jetstream: an independent gateway on the same stream. embedded: one DATA_DIR has one owner, so this is a
   * second app in this process over the owner's store instance; it neither starts nor stops it. Close the peer
   * before the owner.
   */
  startPeer(owner: RunningGateway, file: Record<string, unknown>): Promise<RunningGateway>;
  /** Another backend of the same kind with a store of its own (JetStream: its own nats-server). */
  sibling(): TestBackend;
  /** The nats-server of a jetstream backend (after setup); throws on embedded. */
  readonly nats: NatsServerProcess;
}

const END = Number.MAX_SAFE_INTEGER;

class JetStreamBackend implements TestBackend {
  readonly kind = 'jetstream' as const;
  private server?: NatsServerProcess;

  get nats(): NatsServerProcess {
    if (!this.server) throw new Error('jetstream backend: setup() has not run');
    return this.server;
  }

  async setup(): Promise<void> {
    this.server ??= await NatsServerProcess.start();
  }

  async teardown(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }

  configFor(file: Record<string, unknown>): AppConfig {
    return testConfig({ natsUrl: this.nats.url, file });
  }

  processEnv(): Record<string, string> {
    return { NATS_URL: this.nats.url };
  }

  inspector(_gw: RunningGateway, stream: string): Promise<StoreInspector> {
    return StreamInspector.open(this.nats.url, stream);
  }

  async purge(_gw: RunningGateway, stream: string): Promise<void> {
    const inspect = await StreamInspector.open(this.nats.url, stream);
    try {
      await inspect.purge();
    } finally {
      await inspect.close();
    }
  }

  startPeer(_owner: RunningGateway, file: Record<string, unknown>): Promise<RunningGateway> {
    return startGateway(this.configFor(file));
  }

  sibling(): TestBackend {
    return new JetStreamBackend();
  }
}

class EmbeddedBackend implements TestBackend {
  readonly kind = 'embedded' as const;
  private root?: string;

  get nats(): NatsServerProcess {
    throw new Error('the embedded backend has no nats-server: register this case with itFor(["jetstream"], …)');
  }

  async setup(): Promise<void> {
    this.root ??= mkdtempSync(join(tmpdir(), 'hookstream-e2e-data-'));
  }

  async teardown(): Promise<void> {
    if (this.root) rmSync(this.root, { recursive: true, force: true });
    this.root = undefined;
  }

  /** A fresh DATA_DIR under the root (created by the store on start). */
  private freshDir(): string {
    if (!this.root) throw new Error('embedded backend: setup() has not run');
    return mkdtempSync(join(this.root, 'data-'));
  }

  configFor(file: Record<string, unknown>, sameStoreAs?: AppConfig): AppConfig {
    return testConfig({ dataDir: sameStoreAs?.dataDir ?? this.freshDir(), file });
  }

  processEnv(dataDir?: string): Record<string, string> {
    return { DATA_DIR: dataDir ?? this.freshDir() };
  }

  async inspector(gw: RunningGateway): Promise<StoreInspector> {
    return new EmbeddedInspector(embeddedStoreOf(gw));
  }

  async purge(gw: RunningGateway): Promise<void> {
    await embeddedStoreOf(gw).purge();
  }

  startPeer(owner: RunningGateway, file: Record<string, unknown>): Promise<RunningGateway> {
    const { dataDir } = owner.app.get<AppConfig>(APP_CONFIG);
    return startGateway(testConfig({ dataDir, file }), borrowed(embeddedStoreOf(owner)));
  }

  sibling(): TestBackend {
    return new EmbeddedBackend();
  }
}

/** The running app's own embedded store: its SQLite file is exclusively locked, so it is read through it. */
export function embeddedStoreOf(gw: RunningGateway): EmbeddedEventStore {
  const store = gw.app.get<EventStore>(EVENT_STORE);
  if (!(store instanceof EmbeddedEventStore)) {
    throw new Error(`the gateway runs on the ${store.kind} store, not the embedded one`);
  }
  return store;
}

/** `store` used by a second app that does not own it: start and stop are the owner's. */
function borrowed(store: EventStore): EventStore {
  return {
    kind: store.kind,
    start: async () => undefined,
    stop: async () => undefined,
    isReady: () => store.isReady(),
    append: (req) => store.append(req),
    state: () => store.state(),
    seqAtTime: (t) => store.seqAtTime(t),
    openReader: (opts) => store.openReader(opts),
    tail: (from, handler) => store.tail(from, handler),
    metadata: () => store.metadata(),
  };
}

/** Reads every stored event of an embedded store, through the port, in pages. */
async function readAll(store: EventStore, fromSeq = 1, untilSeq = END): Promise<StoredEvent[]> {
  const reader = await store.openReader({ fromSeq, filter: '>', untilSeq });
  const out: StoredEvent[] = [];
  try {
    for (;;) {
      const page = await reader.next(500);
      if (page.length === 0) return out;
      out.push(...page);
    }
  } finally {
    await reader.close();
  }
}

const decoder = new TextDecoder();

/**
 * seq → msgId from the idempotency table (the embedded counterpart of the Nats-Msg-Id header). The port has no
 * read for it, so this uses the adapter's own connection: no other connection can open the locked file.
 */
function msgIdsOf(store: EmbeddedEventStore): Map<number, string> {
  const db = (store as unknown as { database?: { db?: Database.Database } }).database?.db;
  if (!db?.open) throw new Error('embedded store is not open (or its internals changed: see test/support/backends.ts)');
  const rows = db.prepare('SELECT msg_id, seq FROM idempotency').all() as { msg_id: string; seq: number }[];
  return new Map(rows.map((r) => [r.seq, r.msg_id]));
}

class EmbeddedInspector implements StoreInspector {
  constructor(private readonly store: EmbeddedEventStore) {}

  async firstSeq(): Promise<number> {
    return (await this.store.state()).firstSeq;
  }

  async lastSeq(): Promise<number> {
    return (await this.store.state()).lastSeq;
  }

  async count(): Promise<number> {
    return (await readAll(this.store)).length;
  }

  async get(seq: number): Promise<StoredMessage | null> {
    const [e] = await readAll(this.store, seq, seq);
    if (!e || e.seq !== seq) return null;
    return {
      subject: e.subject,
      msgId: msgIdsOf(this.store).get(seq),
      envelope: JSON.parse(decoder.decode(e.data)) as Record<string, unknown>,
    };
  }

  async all(): Promise<StoredEntry[]> {
    const keys = msgIdsOf(this.store);
    return (await readAll(this.store)).map((e) => ({
      seq: e.seq,
      subject: e.subject,
      msgId: keys.get(e.seq),
      id: envelopeId(e.data),
    }));
  }

  async close(): Promise<void> {
    // Nothing of its own: the store belongs to the gateway.
  }
}

/**
 * Opens a DATA_DIR no process holds (e.g. after the gateway process exited) and lists what it stores, as a
 * restarted gateway would find it.
 */
export async function readDataDir(dataDir: string): Promise<{ state: StreamState; events: StoredEntry[] }> {
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const store = new EmbeddedEventStore(testConfig({ dataDir }), quiet);
  await store.start();
  try {
    const keys = msgIdsOf(store);
    const events = (await readAll(store)).map((e) => ({
      seq: e.seq,
      subject: e.subject,
      msgId: keys.get(e.seq),
      id: envelopeId(e.data),
    }));
    return { state: await store.state(), events };
  } finally {
    await store.stop();
  }
}

export function createBackend(kind: StoreKind): TestBackend {
  return kind === 'jetstream' ? new JetStreamBackend() : new EmbeddedBackend();
}

/**
 * Registers `fn` once per store kind as `name [kind]`. The suite calls `backend.setup()` / `teardown()` in its own
 * hooks, so a block that needs no shared store (or a store of its own, via `sibling()`) starts nothing extra.
 */
export function describeEachStore(
  name: string,
  fn: (backend: TestBackend) => void,
  kinds: readonly StoreKind[] = STORE_KINDS,
): void {
  for (const kind of kinds) {
    const backend = createBackend(kind);
    const title = `${name} [${kind}]`;
    if (kind === 'jetstream') describeWithNats(title, () => fn(backend));
    else describe(title, () => fn(backend));
  }
}

/** `it` registered only when the backend is one of `kinds` (nothing is reported as skipped otherwise). */
export function itFor(
  backend: TestBackend,
  kinds: readonly StoreKind[],
  name: string,
  fn: () => Promise<unknown>,
  timeout?: number,
): void {
  if (kinds.includes(backend.kind)) it(name, fn, timeout);
}

/** `describe` registered only when the backend is one of `kinds`. */
export function describeFor(backend: TestBackend, kinds: readonly StoreKind[], name: string, fn: () => void): void {
  if (kinds.includes(backend.kind)) describe(name, fn);
}
