/**
 * Outbound webhooks: the endpoint API's operations (validation, permissions, nothing half-created), the endpoint
 * registry (API-created endpoints in the store's metadata, declared ones from the config file) and the refresh loop
 * that keeps this process's delivery worker in line with it. No Nest or NATS import: the controller maps errors to
 * HTTP, the store adapters do the I/O.
 */
import { randomBytes } from 'node:crypto';
import type { AppConfig } from '../config/app-config.js';
import { decodeCursor, parseStart } from '../events/cursor.js';
import { allowedBy, coveringPattern, isValidPattern, matchesSubject } from '../events/pattern.js';
import type { DeliveryQueues } from '../store/delivery-queue.port.js';
import { StoreUnavailableError, type EventStore } from '../store/event-store.port.js';
import {
  ackWaitFor,
  DeliveryWorker,
  jobQueueName,
  type DeliveryMetrics,
  type WorkerLogger,
} from './delivery-worker.js';
import {
  OutboundError,
  publicView,
  type AttemptRecord,
  type DeadLetter,
  type DisabledReason,
  type EndpointRecord,
  type EndpointState,
  type RedeliveryJob,
} from './endpoint.js';
import { checkHeaders, generateSecret, isValidSecret, parseEndpointUrl } from './endpoint-rules.js';
import { EndpointStore, type Versioned } from './endpoint-store.js';
import { HttpSender, type SendResult } from './http-sender.js';
import { MetadataConflictError, type MetadataStore } from '../store/metadata.port.js';
import { firstBlockedAddress, systemResolver, type Resolver } from './ssrf-guard.js';

/** Who calls the API: an API key and what it may do. */
export interface Caller {
  keyId: string;
  subscribe: string[];
  endpoints: boolean;
  admin: boolean;
}

export interface OutboundOptions {
  resolver?: Resolver;
  /** How often the registry is re-read (other replicas' changes); default 2 s. */
  refreshMs?: number;
  /** The HTTP client; default one built from `delivery`. */
  sender?: { send(url: URL, headers: Record<string, string>, body: Uint8Array): Promise<SendResult>; close?(): void };
  metrics?: DeliveryMetrics;
  now?: () => number;
  random?: () => number;
  version?: string;
}

const MAX_PATTERNS = 32;
const MAX_LIST_LIMIT = 1000;
const MAX_REDELIVER_IDS = 1000;
const CREATE_FIELDS = new Set([
  'url',
  'patterns',
  'description',
  'from',
  'ordering',
  'maxInFlight',
  'rateLimit',
  'headers',
  'secret',
]);
const PATCH_FIELDS = new Set([
  'url',
  'patterns',
  'description',
  'status',
  'ordering',
  'maxInFlight',
  'rateLimit',
  'headers',
]);
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

const bad = (message: string) => new OutboundError('invalid_request', message);

function newId(prefix: string): string {
  const bytes = randomBytes(20);
  let s = prefix;
  for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkFields(body: Record<string, unknown>, allowed: Set<string>): void {
  const unknown = Object.keys(body).filter((k) => !allowed.has(k));
  if (unknown.length) throw bad(`unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
}

/** Store trouble becomes 503 `unavailable`; everything else passes through. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OutboundError) throw err;
    if (err instanceof StoreUnavailableError)
      throw new OutboundError('unavailable', 'the event store cannot be reached; retry');
    throw err;
  }
}

export class OutboundService {
  private endpointStore?: EndpointStore;
  private worker?: DeliveryWorker;
  private sender?: NonNullable<OutboundOptions['sender']>;
  private refreshTimer?: NodeJS.Timeout;
  private pruneTimer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private refreshAgain?: Promise<void>;
  private epoch = '';
  private declared = new Map<string, EndpointRecord>();
  private stopped = false;
  private readonly now: () => number;
  private readonly resolver: Resolver;

  constructor(
    private readonly config: AppConfig,
    private readonly store: EventStore,
    private readonly queues: DeliveryQueues,
    private readonly metadata: MetadataStore,
    private readonly logger: WorkerLogger,
    private readonly options: OutboundOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.resolver = options.resolver ?? systemResolver;
  }

  // ---- lifecycle ----

  start(): void {
    const d = this.config.delivery;
    this.sender =
      this.options.sender ??
      new HttpSender({ timeoutMs: d.timeoutMs, allowPrivateNetworks: d.allowPrivateNetworks, resolver: this.resolver });
    this.refreshTimer = setInterval(() => void this.refresh(), this.options.refreshMs ?? 2_000);
    this.refreshTimer.unref();
    const pruneEvery = Math.max(1_000, Math.min(d.attemptRetentionMs / 4, 600_000));
    this.pruneTimer = setInterval(() => void this.prune(), pruneEvery);
    this.pruneTimer.unref();
    void this.refresh();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.refreshTimer);
    clearInterval(this.pruneTimer);
    await this.refreshing?.catch(() => undefined);
    await this.worker?.stop();
    this.sender?.close?.();
  }

  private async endpoints(): Promise<EndpointStore> {
    this.endpointStore ??= await EndpointStore.open(this.metadata);
    return this.endpointStore;
  }

  /** Re-reads the registry and jobs, and hands them to the worker. Also run after every change made here. */
  refresh(): Promise<void> {
    // A refresh already running may have read the registry before the change that asks for this one: queue one
    // more after it (at most one), so the workers always end up with what was just written.
    if (this.refreshing) {
      this.refreshAgain ??= this.refreshing.then(() => {
        this.refreshAgain = undefined;
        return this.refresh();
      });
      return this.refreshAgain;
    }
    this.refreshing = this.refreshOnce().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    if (this.stopped) return;
    try {
      const store = await this.endpoints();
      const state = await this.store.state();
      this.epoch = state.epoch;
      if (!this.worker) {
        await this.loadDeclared(state.lastSeq, state.firstSeq);
        this.worker = new DeliveryWorker({
          queues: this.queues,
          endpoints: store,
          sender: this.sender!,
          config: this.config.delivery,
          epoch: () => this.epoch,
          disable: (e, reason) => this.disableFromWorker(e, reason),
          logger: this.logger,
          userAgent: `Hookstream/${this.options.version ?? '0.1.0'}`,
          metrics: this.options.metrics,
          now: this.options.now,
          random: this.options.random,
        });
      }
      const records = [...(await this.declaredWithState()), ...(await store.list()).map((v) => v.value)];
      // No endpoint, no job: skip the second listing (every gateway refreshes, most have no endpoints).
      const jobs = records.length ? await store.allJobs() : [];
      if (this.stopped) return;
      this.worker.sync(records, jobs);
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'outbound: refreshing endpoints failed; retrying');
    }
  }

  private async prune(): Promise<void> {
    try {
      const n = await (await this.endpoints()).pruneAttempts(this.now() - this.config.delivery.attemptRetentionMs);
      if (n) this.logger.info({ removed: n }, 'outbound: old attempt log entries removed');
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'outbound: pruning the attempt log failed');
    }
  }

  /** Declared endpoints: built once the store answers; a start re-enables them (the file declares them active). */
  private async loadDeclared(lastSeq: number, firstSeq: number): Promise<void> {
    const store = await this.endpoints();
    for (const c of this.config.endpoints) {
      const start = parseStart(c.from);
      const cursor = decodeCursor(c.from);
      const startSeq = cursor
        ? cursor.seq + 1
        : start?.kind === 'earliest'
          ? firstSeq
          : start?.kind === 'time'
            ? await this.store.seqAtTime(start.ms)
            : lastSeq + 1;
      this.declared.set(c.id, {
        id: c.id,
        url: c.url,
        patterns: c.patterns,
        description: c.description,
        status: 'active',
        disabledReason: null,
        ordering: c.ordering,
        maxInFlight: c.maxInFlight,
        rateLimit: c.rateLimit,
        headers: c.headers,
        owner: null,
        managed: 'config',
        createdAt: new Date(0).toISOString(),
        secret: c.secret,
        previousSecret: null,
        startSeq,
      });
      const h = await store.health(c.id);
      if (h.disabledReason) await store.putHealth(c.id, { ...h, disabledReason: null, failingSince: null });
    }
  }

  private async declaredWithState(): Promise<EndpointRecord[]> {
    const store = await this.endpoints();
    const out: EndpointRecord[] = [];
    for (const e of this.declared.values()) {
      const h = await store.health(e.id);
      out.push(h.disabledReason ? { ...e, status: 'disabled', disabledReason: h.disabledReason } : e);
    }
    return out;
  }

  private async disableFromWorker(e: EndpointRecord, reason: DisabledReason): Promise<void> {
    const store = await this.endpoints();
    if (e.managed === 'config') {
      const h = await store.health(e.id);
      await store.putHealth(e.id, { ...h, disabledReason: reason });
      return;
    }
    for (let i = 0; i < 5; i++) {
      const cur = await store.get(e.id);
      if (!cur || cur.value.status === 'disabled') return;
      try {
        await store.update({ ...cur.value, status: 'disabled', disabledReason: reason }, cur.revision);
        return;
      } catch (err) {
        if (!(err instanceof MetadataConflictError)) throw err; // else changed meanwhile: read again
      }
    }
  }

  // ---- API ----

  private requireManager(caller: Caller): void {
    if (!caller.admin && !caller.endpoints) {
      throw new OutboundError(
        'forbidden',
        'this API key may not manage endpoints (it needs endpoints: true or admin: true)',
      );
    }
  }

  /** The endpoint if the caller may see it; else not_found (others' endpoints are not revealed). */
  private async find(caller: Caller, id: unknown): Promise<{ record: EndpointRecord; revision: number | null }> {
    this.requireManager(caller);
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id))
      throw new OutboundError('not_found', 'no such endpoint');
    const declared = this.declared.get(id) ?? this.config.endpoints.find((c) => c.id === id);
    if (declared) {
      if (!caller.admin) throw new OutboundError('not_found', 'no such endpoint');
      const rec = this.declared.get(id);
      if (!rec) throw new OutboundError('unavailable', 'declared endpoints are not loaded yet; retry');
      const [withState] = (await this.declaredWithState()).filter((e) => e.id === id);
      return { record: withState, revision: null };
    }
    const found: Versioned<EndpointRecord> | null = await (await this.endpoints()).get(id);
    if (!found || (!caller.admin && found.value.owner !== caller.keyId))
      throw new OutboundError('not_found', 'no such endpoint');
    return { record: found.value, revision: found.revision };
  }

  private async checkUrl(value: unknown): Promise<string> {
    if (value === undefined) throw bad('url is required');
    if (typeof value !== 'string') throw bad('url must be a string');
    const allowPrivate = this.config.delivery.allowPrivateNetworks;
    const parsed = parseEndpointUrl(value, allowPrivate);
    if (!parsed.ok) throw new OutboundError('invalid_url', parsed.reason);
    if (!allowPrivate) {
      let blocked: string | null;
      try {
        blocked = await firstBlockedAddress(parsed.url.hostname, this.resolver);
      } catch (err) {
        throw new OutboundError('invalid_url', `the url's host does not resolve: ${(err as Error).message}`);
      }
      if (blocked)
        throw new OutboundError(
          'invalid_url',
          `the url's host resolves to a private, loopback or reserved address (${blocked})`,
        );
    }
    return value;
  }

  private checkPatterns(caller: Caller, value: unknown): string[] {
    if (value === undefined) throw bad('patterns is required');
    if (!Array.isArray(value) || !value.every((p) => typeof p === 'string'))
      throw bad('patterns must be an array of strings');
    if (value.length === 0) throw new OutboundError('invalid_subject', 'patterns must hold at least one pattern');
    if (value.length > MAX_PATTERNS) throw bad(`at most ${MAX_PATTERNS} patterns`);
    const patterns = value as string[];
    const invalid = patterns.find((p) => !isValidPattern(p));
    if (invalid !== undefined)
      throw new OutboundError('invalid_subject', `${JSON.stringify(invalid)} is not a valid subject pattern`);
    if (!caller.admin) {
      const outside = patterns.find((p) => !allowedBy(caller.subscribe, p));
      if (outside !== undefined) {
        throw new OutboundError('forbidden', `${JSON.stringify(outside)} is not inside this API key's subscribe grant`);
      }
    }
    return [...new Set(patterns)];
  }

  private checkOptions(body: Record<string, unknown>, base: Pick<EndpointRecord, 'ordering' | 'maxInFlight'>) {
    if (body.description !== undefined && (typeof body.description !== 'string' || body.description.length > 1024)) {
      throw bad('description must be a string of at most 1024 characters');
    }
    if (body.ordering !== undefined && body.ordering !== 'unordered' && body.ordering !== 'fifo') {
      throw bad('ordering must be "unordered" or "fifo"');
    }
    const ordering = (body.ordering as EndpointRecord['ordering'] | undefined) ?? base.ordering;
    const mif = body.maxInFlight;
    if (mif !== undefined && (typeof mif !== 'number' || !Number.isInteger(mif) || mif < 1 || mif > 1000)) {
      throw bad('maxInFlight must be an integer from 1 to 1000');
    }
    if (ordering === 'fifo' && mif !== undefined && mif !== 1) throw bad('a fifo endpoint has maxInFlight 1');
    const maxInFlight =
      ordering === 'fifo'
        ? 1
        : ((mif as number | undefined) ??
          (body.ordering === 'unordered' && base.ordering === 'fifo' ? 16 : base.maxInFlight));
    const rl = body.rateLimit;
    if (
      rl !== undefined &&
      rl !== null &&
      (typeof rl !== 'number' || !Number.isFinite(rl) || rl <= 0 || rl > 100_000)
    ) {
      throw bad('rateLimit must be a positive number of deliveries per second, or null');
    }
    const headers = checkHeaders(body.headers);
    if (!headers.ok) throw bad(headers.reason);
    return { ordering, maxInFlight, headers: headers.headers };
  }

  /** `from` of a create: latest (default), earliest, an RFC 3339 time or a cursor → the first sequence to deliver. */
  private async startSeqOf(from: unknown): Promise<number> {
    if (from !== undefined && typeof from !== 'string')
      throw new OutboundError('invalid_cursor', 'from must be a string');
    const value = from ?? 'latest';
    const cursor = decodeCursor(value);
    const start = cursor ? null : parseStart(value);
    if (!cursor && !start) {
      throw new OutboundError('invalid_cursor', 'from must be "latest", "earliest", an RFC 3339 time or a cursor');
    }
    const state = await this.store.state();
    if (cursor) {
      if (cursor.epoch !== state.epoch)
        throw new OutboundError('invalid_cursor', 'the cursor belongs to another stream');
      return cursor.seq + 1;
    }
    if (start!.kind === 'earliest') return state.firstSeq;
    if (start!.kind === 'latest') return state.lastSeq + 1;
    return this.store.seqAtTime(start!.ms);
  }

  async create(caller: Caller, body: unknown): Promise<object> {
    this.requireManager(caller);
    if (!isObject(body)) throw bad('the body must be a JSON object');
    checkFields(body, CREATE_FIELDS);
    const patterns = this.checkPatterns(caller, body.patterns);
    const opts = this.checkOptions(body, { ordering: 'unordered', maxInFlight: 16 });
    if (body.secret !== undefined && !isValidSecret(body.secret)) {
      throw bad('secret must be whsec_ followed by the base64 of 24 to 64 bytes');
    }
    const url = await this.checkUrl(body.url);
    return guard(async () => {
      const startSeq = await this.startSeqOf(body.from);
      const record: EndpointRecord = {
        id: newId('ep_'),
        url,
        patterns,
        description: (body.description as string | undefined) ?? '',
        status: 'active',
        disabledReason: null,
        ordering: opts.ordering,
        maxInFlight: opts.maxInFlight,
        rateLimit: (body.rateLimit as number | null | undefined) ?? null,
        headers: opts.headers,
        owner: caller.keyId,
        managed: 'api',
        createdAt: new Date(this.now()).toISOString(),
        secret: (body.secret as string | undefined) ?? generateSecret(),
        previousSecret: null,
        startSeq,
      };
      const store = await this.endpoints();
      // The queue first, so no event stored after the answer is missed; undone if the record cannot be written.
      await this.queues.open(record.id, this.queueOptions(record, startSeq));
      try {
        await store.create(record);
      } catch (err) {
        await this.queues.delete(record.id).catch(() => undefined);
        throw err;
      }
      void this.refresh();
      return { ...publicView(record, emptyState()), secret: record.secret };
    });
  }

  async list(caller: Caller): Promise<object> {
    this.requireManager(caller);
    return guard(async () => {
      const all = [
        ...(caller.admin ? await this.declaredWithState() : []),
        ...(await (await this.endpoints()).list()).map((v) => v.value),
      ];
      const visible = all.filter((e) => caller.admin || (e.managed === 'api' && e.owner === caller.keyId));
      const endpoints = [];
      for (const e of visible) endpoints.push(publicView(e, await this.stateOf(e)));
      return { endpoints };
    });
  }

  async get(caller: Caller, id: unknown): Promise<object> {
    return guard(async () => {
      const { record } = await this.find(caller, id);
      return publicView(record, await this.stateOf(record));
    });
  }

  async secret(caller: Caller, id: unknown): Promise<object> {
    return guard(async () => ({ secret: (await this.find(caller, id)).record.secret }));
  }

  private async stateOf(e: EndpointRecord): Promise<EndpointState> {
    const store = await this.endpoints();
    const h = await store.health(e.id);
    let pending = 0;
    try {
      const names = [e.id, ...(await store.jobs(e.id)).map((j) => jobQueueName(e.id, j.id))];
      for (const name of names) {
        const s = await (await this.queues.open(name, this.queueOptions(e, name === e.id ? e.startSeq : 1))).state();
        pending += s.backlog + s.inFlight;
      }
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
    }
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      pending,
      dead: (await store.dead(e.id)).length,
      lastSuccessAt: iso(h.lastSuccessAt),
      lastFailureAt: iso(h.lastFailureAt),
      failingSince: iso(h.failingSince),
    };
  }

  private queueOptions(e: EndpointRecord, startSeq: number) {
    return {
      filter: coveringPattern(e.patterns),
      startSeq,
      maxInFlight: e.maxInFlight,
      ackWaitMs: ackWaitFor(this.config.delivery),
    };
  }

  private async change(
    caller: Caller,
    id: unknown,
    fn: (e: EndpointRecord) => Promise<EndpointRecord> | EndpointRecord,
  ): Promise<EndpointRecord> {
    const store = await this.endpoints();
    for (let attempt = 0; ; attempt++) {
      const { record, revision } = await this.find(caller, id);
      if (record.managed === 'config' || revision === null) {
        throw new OutboundError(
          'read_only',
          'this endpoint is declared in the config file and cannot be changed through the API',
        );
      }
      const next = await fn(record);
      try {
        await store.update(next, revision);
        // This replica's workers use the change before the answer goes out (others pick it up on their refresh).
        await this.refresh();
        return next;
      } catch (err) {
        // Changed by someone else meanwhile (the worker, another replica): apply the change to the new version.
        if (!(err instanceof MetadataConflictError) || attempt >= 4) throw err;
      }
    }
  }

  async patch(caller: Caller, id: unknown, body: unknown): Promise<object> {
    return guard(async () => {
      await this.find(caller, id); // 404 before 400: do not reveal what others' endpoints accept
      if (!isObject(body)) throw bad('the body must be a JSON object');
      checkFields(body, PATCH_FIELDS);
      const patterns = body.patterns === undefined ? undefined : this.checkPatterns(caller, body.patterns);
      if (body.status !== undefined && body.status !== 'active' && body.status !== 'disabled') {
        throw bad('status must be "active" or "disabled"');
      }
      const url = body.url === undefined ? undefined : await this.checkUrl(body.url);
      const updated = await this.change(caller, id, (e) => {
        if (e.managed === 'config') return e;
        const opts = this.checkOptions(body, e);
        const next: EndpointRecord = {
          ...e,
          url: url ?? e.url,
          patterns: patterns ?? e.patterns,
          description: (body.description as string | undefined) ?? e.description,
          ordering: opts.ordering,
          maxInFlight: opts.maxInFlight,
          rateLimit: body.rateLimit === undefined ? e.rateLimit : (body.rateLimit as number | null),
          headers: body.headers === undefined ? e.headers : opts.headers,
        };
        if (body.status === 'active') Object.assign(next, { status: 'active', disabledReason: null });
        if (body.status === 'disabled' && e.status === 'active')
          Object.assign(next, { status: 'disabled', disabledReason: 'manual' });
        return next;
      });
      if (body.status === 'active') {
        // Reactivated: the failing clock starts again.
        const store = await this.endpoints();
        const h = await store.health(updated.id);
        if (h.failingSince !== null) await store.putHealth(updated.id, { ...h, failingSince: null });
      }
      return publicView(updated, await this.stateOf(updated));
    });
  }

  async remove(caller: Caller, id: unknown): Promise<void> {
    return guard(async () => {
      const { record } = await this.find(caller, id);
      if (record.managed === 'config') {
        throw new OutboundError(
          'read_only',
          'this endpoint is declared in the config file and cannot be deleted through the API',
        );
      }
      const store = await this.endpoints();
      const jobs = await store.jobs(record.id);
      // The record first: every worker stops on its next refresh; then the queues and their pending deliveries.
      await store.remove(record.id);
      void this.refresh();
      await this.queues.delete(record.id);
      for (const j of jobs) await this.queues.delete(jobQueueName(record.id, j.id));
    });
  }

  async rotateSecret(caller: Caller, id: unknown, body: unknown): Promise<object> {
    return guard(async () => {
      await this.find(caller, id);
      if (body !== undefined && !isObject(body)) throw bad('the body must be a JSON object');
      const b = (body ?? {}) as Record<string, unknown>;
      checkFields(b, new Set(['secret']));
      if (b.secret !== undefined && !isValidSecret(b.secret))
        throw bad('secret must be whsec_ followed by the base64 of 24 to 64 bytes');
      const secret = (b.secret as string | undefined) ?? generateSecret();
      await this.change(caller, id, (e) => ({
        ...e,
        secret,
        previousSecret: { secret: e.secret, until: this.now() + this.config.delivery.secretGraceMs },
      }));
      return { secret };
    });
  }

  private limitOf(query: Record<string, unknown>, dflt: number): number {
    const raw = query.limit;
    if (raw === undefined) return dflt;
    if (typeof raw !== 'string' || !/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIST_LIMIT) {
      throw bad(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    }
    return Number(raw);
  }

  async attempts(caller: Caller, id: unknown, query: Record<string, unknown>): Promise<{ attempts: AttemptRecord[] }> {
    return guard(async () => {
      const { record } = await this.find(caller, id);
      const limit = this.limitOf(query, 100);
      const eventId = query.eventId;
      if (eventId !== undefined && (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > 512)) {
        throw bad('eventId must be one non-empty string');
      }
      let all = await (await this.endpoints()).attempts(record.id);
      if (eventId !== undefined) all = all.filter((a) => a.eventId === eventId);
      all.sort((a, b) => (a.at === b.at ? b.attempt - a.attempt : a.at < b.at ? 1 : -1));
      return { attempts: all.slice(0, limit) };
    });
  }

  async dead(caller: Caller, id: unknown, query: Record<string, unknown>): Promise<{ events: DeadLetter[] }> {
    return guard(async () => {
      const { record } = await this.find(caller, id);
      const limit = this.limitOf(query, 100);
      return { events: (await (await this.endpoints()).dead(record.id)).slice(0, limit) };
    });
  }

  /** `[from, until]` bound of a redelivery: a cursor (that event) or an RFC 3339 time. */
  private async boundSeq(value: unknown, which: 'from' | 'until', epoch: string): Promise<number> {
    if (typeof value !== 'string')
      throw new OutboundError('invalid_cursor', `${which} must be a cursor or an RFC 3339 time`);
    const cursor = decodeCursor(value);
    if (cursor) {
      if (cursor.epoch !== epoch)
        throw new OutboundError('invalid_cursor', `${which}: the cursor belongs to another stream`);
      return cursor.seq;
    }
    const start = parseStart(value);
    if (!start || start.kind !== 'time')
      throw new OutboundError('invalid_cursor', `${which} must be a cursor or an RFC 3339 time`);
    return which === 'from' ? this.store.seqAtTime(start.ms) : (await this.store.seqAtTime(start.ms + 1)) - 1;
  }

  async redeliver(caller: Caller, id: unknown, body: unknown): Promise<{ queued: number }> {
    return guard(async () => {
      const { record } = await this.find(caller, id);
      if (!isObject(body)) throw bad('the body must be a JSON object');
      checkFields(body, new Set(['eventIds', 'from', 'until']));
      const store = await this.endpoints();
      const byIds = body.eventIds !== undefined;
      if (byIds && (body.from !== undefined || body.until !== undefined))
        throw bad('give eventIds or from/until, not both');
      let job: RedeliveryJob;
      let dropDead: DeadLetter[] = [];
      if (byIds) {
        const ids = body.eventIds;
        if (
          !Array.isArray(ids) ||
          ids.length === 0 ||
          ids.length > MAX_REDELIVER_IDS ||
          !ids.every((x) => typeof x === 'string')
        ) {
          throw bad(`eventIds must be an array of 1 to ${MAX_REDELIVER_IDS} strings`);
        }
        const dead = await store.dead(record.id);
        const byId = new Map(dead.map((d) => [d.eventId, d]));
        const missing = [...new Set(ids as string[])].filter((x) => !byId.has(x));
        if (missing.length) {
          throw new OutboundError(
            'not_found',
            `not dead for this endpoint: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`,
          );
        }
        dropDead = [...new Set(ids as string[])].map((x) => byId.get(x)!);
        const seqs = dropDead.map((d) => d.seq).sort((a, b) => a - b);
        job = {
          id: newId('r'),
          fromSeq: seqs[0],
          untilSeq: seqs[seqs.length - 1],
          seqs,
          createdAt: new Date(this.now()).toISOString(),
        };
      } else {
        if (body.from === undefined && body.until === undefined) throw bad('give eventIds, or from and/or until');
        const state = await this.store.state();
        const fromSeq = body.from === undefined ? state.firstSeq : await this.boundSeq(body.from, 'from', state.epoch);
        const untilSeq =
          body.until === undefined ? state.lastSeq : await this.boundSeq(body.until, 'until', state.epoch);
        job = {
          id: newId('r'),
          fromSeq: Math.max(fromSeq, state.firstSeq),
          untilSeq: Math.min(untilSeq, state.lastSeq),
          seqs: null,
          createdAt: new Date(this.now()).toISOString(),
        };
      }
      const queued = byIds ? dropDead.length : await this.countMatching(record, job.fromSeq, job.untilSeq);
      if (queued === 0) return { queued: 0 };
      const queueName = jobQueueName(record.id, job.id);
      await this.queues.open(queueName, this.queueOptions(record, job.fromSeq));
      try {
        await store.putJob(record.id, job);
      } catch (err) {
        await this.queues.delete(queueName).catch(() => undefined);
        throw err;
      }
      // Sent again: no longer dead (if it fails again, it is recorded again).
      for (const d of dropDead) await store.removeDead(record.id, d.seq).catch(() => undefined);
      void this.refresh();
      return { queued };
    });
  }

  private async countMatching(e: EndpointRecord, fromSeq: number, untilSeq: number): Promise<number> {
    if (fromSeq > untilSeq) return 0;
    const reader = await this.store.openReader({ fromSeq, filter: coveringPattern(e.patterns), untilSeq });
    let n = 0;
    try {
      for (let page = await reader.next(500); page.length; page = await reader.next(500)) {
        for (const ev of page) if (ev.seq <= untilSeq && e.patterns.some((p) => matchesSubject(p, ev.subject))) n++;
      }
    } finally {
      await reader.close();
    }
    return n;
  }

  /** For metrics: every endpoint this process knows, with its state. */
  async snapshot(): Promise<{ id: string; status: string; pending: number; dead: number }[]> {
    const records = [
      ...(await this.declaredWithState()),
      ...(await (await this.endpoints()).list()).map((v) => v.value),
    ];
    const out = [];
    for (const e of records) {
      const s = await this.stateOf(e);
      out.push({ id: e.id, status: e.status, pending: s.pending, dead: s.dead });
    }
    return out;
  }
}

function emptyState(): EndpointState {
  return { pending: 0, dead: 0, lastSuccessAt: null, lastFailureAt: null, failingSince: null };
}
