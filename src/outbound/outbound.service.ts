/**
 * Outbound webhooks: the endpoint API's operations (permissions, nothing half-created, optimistic updates) over the
 * registry the delivery supervisor keeps in line with the workers. Input checks live in endpoint-input.ts,
 * redelivery in redelivery.ts. No Nest or NATS import: the controller maps errors to HTTP, the store adapters do
 * the I/O.
 */
import type { AppConfig } from '../config/app-config.js';
import type { DeliveryQueues } from '../store/delivery-queue.port.js';
import { StoreUnavailableError, type EventStore } from '../store/event-store.port.js';
import { MetadataConflictError, type MetadataStore } from '../store/metadata.port.js';
import { jobQueueName, type WorkerLogger } from './delivery-worker.js';
import { DeliverySupervisor, emptyState, type Sender, type SupervisorOptions } from './delivery-supervisor.js';
import { OutboundError, publicView, type AttemptRecord, type DeadLetter, type EndpointRecord } from './endpoint.js';
import {
  bad,
  checkFields,
  checkOptions,
  checkPatterns,
  checkUrl,
  CREATE_FIELDS,
  isObject,
  limitOf,
  newId,
  PATCH_FIELDS,
  requireManager,
  startSeqOf,
  type Caller,
} from './endpoint-input.js';
import { generateSecret, isValidSecret } from './endpoint-rules.js';
import { HttpSender } from './http-sender.js';
import { Redeliveries } from './redelivery.js';
import { systemResolver, type Resolver } from './ssrf-guard.js';

export type { Caller } from './endpoint-input.js';

export interface OutboundOptions extends SupervisorOptions {
  resolver?: Resolver;
  /** The HTTP client; default one built from `delivery`. */
  sender?: Sender;
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

const SECRET_RULE = 'secret must be whsec_ followed by the base64 of 24 to 64 bytes';

export class OutboundService {
  private sender?: Sender;
  private readonly supervisor: DeliverySupervisor;
  private readonly redeliveries: Redeliveries;
  private readonly now: () => number;
  private readonly resolver: Resolver;

  constructor(
    private readonly config: AppConfig,
    private readonly store: EventStore,
    private readonly queues: DeliveryQueues,
    metadata: MetadataStore,
    logger: WorkerLogger,
    private readonly options: OutboundOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.resolver = options.resolver ?? systemResolver;
    this.supervisor = new DeliverySupervisor(config, store, queues, metadata, logger, options);
    this.redeliveries = new Redeliveries(store, queues, this.supervisor, this.now);
  }

  // ---- lifecycle ----

  start(): void {
    const d = this.config.delivery;
    this.sender =
      this.options.sender ??
      new HttpSender({ timeoutMs: d.timeoutMs, allowPrivateNetworks: d.allowPrivateNetworks, resolver: this.resolver });
    this.supervisor.start(this.sender);
  }

  async stop(): Promise<void> {
    await this.supervisor.stop();
    this.sender?.close?.();
  }

  /** Re-reads the registry and hands it to this process's workers. */
  refresh(): Promise<void> {
    return this.supervisor.refresh();
  }

  /** For metrics: every endpoint this process knows, with its state. */
  snapshot(): Promise<{ id: string; status: string; pending: number; dead: number }[]> {
    return this.supervisor.snapshot();
  }

  // ---- API ----

  /** The endpoint if the caller may see it; else not_found (others' endpoints are not revealed). */
  private async find(caller: Caller, id: unknown): Promise<{ record: EndpointRecord; revision: number | null }> {
    requireManager(caller);
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id))
      throw new OutboundError('not_found', 'no such endpoint');
    if (this.supervisor.isDeclared(id)) {
      if (!caller.admin) throw new OutboundError('not_found', 'no such endpoint');
      const record = await this.supervisor.declaredEndpoint(id);
      if (!record) throw new OutboundError('unavailable', 'declared endpoints are not loaded yet; retry');
      return { record, revision: null };
    }
    const found = await (await this.supervisor.endpoints()).get(id);
    if (!found || (!caller.admin && found.value.owner !== caller.keyId))
      throw new OutboundError('not_found', 'no such endpoint');
    return { record: found.value, revision: found.revision };
  }

  private checkUrl(value: unknown): Promise<string> {
    return checkUrl(value, this.config.delivery.allowPrivateNetworks, this.resolver);
  }

  async create(caller: Caller, body: unknown): Promise<object> {
    requireManager(caller);
    if (!isObject(body)) throw bad('the body must be a JSON object');
    checkFields(body, CREATE_FIELDS);
    const patterns = checkPatterns(caller, body.patterns);
    const opts = checkOptions(body, { ordering: 'unordered', maxInFlight: 16 });
    if (body.secret !== undefined && !isValidSecret(body.secret)) throw bad(SECRET_RULE);
    const url = await this.checkUrl(body.url);
    return guard(async () => {
      const startSeq = await startSeqOf(this.store, body.from);
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
      const store = await this.supervisor.endpoints();
      // The queue first, so no event stored after the answer is missed; undone if the record cannot be written.
      await this.queues.open(record.id, this.supervisor.queueOptions(record, startSeq));
      try {
        await store.create(record);
      } catch (err) {
        await this.queues.delete(record.id).catch(() => undefined);
        throw err;
      }
      void this.supervisor.refresh();
      return { ...publicView(record, emptyState()), secret: record.secret };
    });
  }

  async list(caller: Caller): Promise<object> {
    requireManager(caller);
    return guard(async () => {
      const all = caller.admin
        ? await this.supervisor.allRecords()
        : (await (await this.supervisor.endpoints()).list()).map((v) => v.value);
      const visible = all.filter((e) => caller.admin || (e.managed === 'api' && e.owner === caller.keyId));
      const endpoints = [];
      for (const e of visible) endpoints.push(publicView(e, await this.supervisor.stateOf(e)));
      return { endpoints };
    });
  }

  async get(caller: Caller, id: unknown): Promise<object> {
    return guard(async () => {
      const { record } = await this.find(caller, id);
      return publicView(record, await this.supervisor.stateOf(record));
    });
  }

  async secret(caller: Caller, id: unknown): Promise<object> {
    return guard(async () => ({ secret: (await this.find(caller, id)).record.secret }));
  }

  private async change(
    caller: Caller,
    id: unknown,
    fn: (e: EndpointRecord) => Promise<EndpointRecord> | EndpointRecord,
  ): Promise<EndpointRecord> {
    const store = await this.supervisor.endpoints();
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
        await this.supervisor.refresh();
        return next;
      } catch (err) {
        // Changed by someone else meanwhile (the worker, another replica): apply the change to the new version.
        if (!(err instanceof MetadataConflictError) || attempt >= 4) throw err;
      }
    }
  }

  async patch(caller: Caller, id: unknown, body: unknown): Promise<object> {
    return guard(async () => {
      const current = (await this.find(caller, id)).record; // 404 before 400: do not reveal what others' endpoints accept
      if (!isObject(body)) throw bad('the body must be a JSON object');
      checkFields(body, PATCH_FIELDS);
      const patterns = body.patterns === undefined ? undefined : checkPatterns(caller, body.patterns);
      if (body.status !== undefined && body.status !== 'active' && body.status !== 'disabled') {
        throw bad('status must be "active" or "disabled"');
      }
      const url = body.url === undefined ? undefined : await this.checkUrl(body.url);
      if (current.managed === 'config') return this.patchDeclared(current, body);
      if (body.status === 'active' && current.status === 'disabled') await this.supervisor.prepareResume(current);
      const updated = await this.change(caller, id, (e) => {
        if (e.managed === 'config') return e;
        const opts = checkOptions(body, e);
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
        const store = await this.supervisor.endpoints();
        const h = await store.health(updated.id);
        if (h.failingSince !== null) await store.putHealth(updated.id, { ...h, failingSince: null });
      }
      return publicView(updated, await this.supervisor.stateOf(updated));
    });
  }

  /** A declared endpoint takes only `status` through the API: the file owns the rest. */
  private async patchDeclared(e: EndpointRecord, body: Record<string, unknown>): Promise<object> {
    if (Object.keys(body).some((k) => k !== 'status') || body.status === undefined) {
      throw new OutboundError(
        'read_only',
        'this endpoint is declared in the config file: only its status can be changed through the API',
      );
    }
    await this.supervisor.setDeclaredStatus(e.id, body.status as 'active' | 'disabled');
    const updated = (await this.supervisor.declaredEndpoint(e.id)) ?? e;
    return publicView(updated, await this.supervisor.stateOf(updated));
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
      const store = await this.supervisor.endpoints();
      const jobs = await store.jobs(record.id);
      // The record first: every worker stops on its next refresh; then the queues and their pending deliveries.
      await store.remove(record.id);
      void this.supervisor.refresh();
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
      if (b.secret !== undefined && !isValidSecret(b.secret)) throw bad(SECRET_RULE);
      const secret = (b.secret as string | undefined) ?? generateSecret();
      await this.change(caller, id, (e) => ({
        ...e,
        secret,
        previousSecret: { secret: e.secret, until: this.now() + this.config.delivery.secretGraceMs },
      }));
      return { secret };
    });
  }

  /** The attempt log, newest first; `eventId` narrows it to one event. */
  async attempts(caller: Caller, id: unknown, query: Record<string, unknown>): Promise<{ attempts: AttemptRecord[] }> {
    return guard(async () => {
      const { record } = await this.find(caller, id);
      const limit = limitOf(query, 100);
      const eventId = query.eventId;
      if (eventId !== undefined && (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > 512)) {
        throw bad('eventId must be one non-empty string');
      }
      let all = await (await this.supervisor.endpoints()).attempts(record.id);
      if (eventId !== undefined) all = all.filter((a) => a.eventId === eventId);
      all.sort((a, b) => (a.at === b.at ? b.attempt - a.attempt : a.at < b.at ? 1 : -1));
      return { attempts: all.slice(0, limit) };
    });
  }

  async dead(caller: Caller, id: unknown, query: Record<string, unknown>): Promise<{ events: DeadLetter[] }> {
    return guard(async () => {
      const { record } = await this.find(caller, id);
      const limit = limitOf(query, 100);
      return { events: (await (await this.supervisor.endpoints()).dead(record.id)).slice(0, limit) };
    });
  }

  async redeliver(caller: Caller, id: unknown, body: unknown): Promise<{ queued: number }> {
    return guard(async () => this.redeliveries.redeliver((await this.find(caller, id)).record, body));
  }
}
