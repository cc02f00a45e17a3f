/**
 * Keeps this process's delivery worker in line with the endpoint registry: API-created endpoints in the store's
 * metadata, declared ones from the config file (their disabled state kept in the metadata, across restarts), re-read every
 * refresh interval (other replicas' changes) and after every change made here. Also prunes the attempt log, records
 * the worker's disables, and reads an endpoint's delivery state (pending, dead, health) for the API and metrics.
 */
import type { AppConfig } from '../config/app-config.js';
import { decodeCursor, parseStart } from '../events/cursor.js';
import { coveringPattern } from '../events/pattern.js';
import type { DeliveryQueueOptions, DeliveryQueues } from '../store/delivery-queue.port.js';
import { StoreUnavailableError, type EventStore } from '../store/event-store.port.js';
import { MetadataConflictError, type MetadataStore } from '../store/metadata.port.js';
import {
  ackWaitFor,
  DeliveryWorker,
  jobQueueName,
  type DeliveryMetrics,
  type WorkerLogger,
} from './delivery-worker.js';
import type { AttemptRecord, DisabledReason, EndpointRecord, EndpointState } from './endpoint.js';
import { EndpointStore } from './endpoint-store.js';
import type { SendResult } from './http-sender.js';
import { retryWindowMs } from './retry-schedule.js';

/** Endpoints whose state a metrics snapshot reads at once. */
const SNAPSHOT_CONCURRENCY = 16;
/**
 * This service starts beside the event store (not after it), so its first refreshes may find the store not open or
 * not connected yet: that is not logged until it has lasted this long without one refresh going through (the store
 * reports its own connection trouble meanwhile).
 */
export const STARTING_QUIET_MS = 30_000;

export type Sender = {
  send(url: URL, headers: Record<string, string>, body: Uint8Array): Promise<SendResult>;
  close?(): void;
};

export interface SupervisorOptions {
  /** How often the registry is re-read (other replicas' changes); default 2 s. */
  refreshMs?: number;
  metrics?: DeliveryMetrics;
  now?: () => number;
  random?: () => number;
  version?: string;
}

export class DeliverySupervisor {
  private endpointStore?: EndpointStore;
  private worker?: DeliveryWorker;
  private sender?: Sender;
  private refreshTimer?: NodeJS.Timeout;
  private pruneTimer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private refreshAgain?: Promise<void>;
  private epoch = '';
  private readonly declared = new Map<string, EndpointRecord>();
  private stopped = false;
  private startedAt = 0;
  /** A refresh has gone through since start(): from then on, every failure is logged. */
  private refreshed = false;
  private readonly now: () => number;

  constructor(
    private readonly config: AppConfig,
    private readonly store: EventStore,
    private readonly queues: DeliveryQueues,
    private readonly metadata: MetadataStore,
    private readonly logger: WorkerLogger,
    private readonly options: SupervisorOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  start(sender: Sender): void {
    this.sender = sender;
    this.startedAt = this.now();
    const d = this.config.delivery;
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
  }

  async endpoints(): Promise<EndpointStore> {
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
    if (this.stopped || !this.sender) return;
    try {
      const store = await this.endpoints();
      const state = await this.store.state();
      this.epoch = state.epoch;
      if (!this.worker) {
        await this.loadDeclared(state.lastSeq, state.firstSeq);
        this.worker = new DeliveryWorker({
          queues: this.queues,
          endpoints: store,
          sender: this.sender,
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
      const records = await this.allRecords();
      // No endpoint, no job: skip the second listing (every gateway refreshes, most have no endpoints).
      const jobs = records.length ? await store.allJobs() : [];
      if (this.stopped) return;
      this.worker.sync(records, jobs);
      this.refreshed = true;
    } catch (err) {
      if (this.expectedFailure(err)) return;
      this.logger.warn({ err: String(err) }, 'outbound: refreshing endpoints failed; retrying');
    }
  }

  /** Stopping, or the store still starting (unavailable, and no refresh through yet, for a short while). */
  private expectedFailure(err: unknown): boolean {
    if (this.stopped) return true;
    return !this.refreshed && err instanceof StoreUnavailableError && this.now() - this.startedAt < STARTING_QUIET_MS;
  }

  private async prune(): Promise<void> {
    try {
      const n = await (await this.endpoints()).pruneAttempts(this.now() - this.config.delivery.attemptRetentionMs);
      if (n) this.logger.info({ removed: n }, 'outbound: old attempt log entries removed');
    } catch (err) {
      this.logger.warn({ err: String(err) }, 'outbound: pruning the attempt log failed');
    }
  }

  /**
   * Declared endpoints: built once the store answers. One disabled before a restart stays disabled (its state is in
   * the metadata, not the file) until an admin sets it active through the API.
   */
  private async loadDeclared(lastSeq: number, firstSeq: number): Promise<void> {
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
    }
  }

  /** Whether the config file declares `id` (loaded or not yet). */
  isDeclared(id: string): boolean {
    return this.declared.has(id) || this.config.endpoints.some((c) => c.id === id);
  }

  /** A declared endpoint with its stored state; null while the declared endpoints are not loaded yet. */
  async declaredEndpoint(id: string): Promise<EndpointRecord | null> {
    const e = this.declared.get(id);
    return e ? this.withState(e) : null;
  }

  private async withState(e: EndpointRecord): Promise<EndpointRecord> {
    const h = await (await this.endpoints()).health(e.id);
    return h.disabledReason ? { ...e, status: 'disabled', disabledReason: h.disabledReason } : e;
  }

  async declaredWithState(): Promise<EndpointRecord[]> {
    const out: EndpointRecord[] = [];
    for (const e of this.declared.values()) out.push(await this.withState(e));
    return out;
  }

  /** Every endpoint: declared ones first, then API-created ones. */
  async allRecords(): Promise<EndpointRecord[]> {
    return [...(await this.declaredWithState()), ...(await (await this.endpoints()).list()).map((v) => v.value)];
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

  /** Sets a declared endpoint active or disabled (`manual`); the file cannot, so this is kept in the metadata. */
  async setDeclaredStatus(id: string, status: 'active' | 'disabled'): Promise<void> {
    const e = await this.declaredEndpoint(id);
    if (!e) return;
    const store = await this.endpoints();
    if (status === 'active' && e.status === 'disabled') await this.prepareResume(e);
    const h = await store.health(id);
    if (status === 'active') await store.putHealth(id, { ...h, disabledReason: null, failingSince: null });
    else if (!h.disabledReason) await store.putHealth(id, { ...h, disabledReason: 'manual' });
    await this.refresh();
  }

  /**
   * A disabled endpoint about to be set active. Events that expired meanwhile are recorded dead (`expired`): those it
   * had attempted that the stream no longer holds (retention) now, and those still stored but older than the retry
   * window as its queue hands them out (the cut-off written here). Events removed by retention before any attempt
   * left no id to record: the range is logged.
   */
  async prepareResume(e: EndpointRecord): Promise<void> {
    const store = await this.endpoints();
    const now = this.now();
    const { firstSeq } = await this.store.state();
    const dead = new Set((await store.dead(e.id)).map((d) => d.seq));
    const delivered = new Set<number>();
    const last = new Map<number, AttemptRecord>();
    for (const a of await store.attempts(e.id)) {
      if (a.error === null && a.status !== null && a.status >= 200 && a.status < 300) delivered.add(a.seq);
      const prev = last.get(a.seq);
      if (!prev || a.attempt > prev.attempt) last.set(a.seq, a);
    }
    for (const [seq, a] of last) {
      if (seq >= firstSeq || delivered.has(seq) || dead.has(seq)) continue;
      await store.putDead(e.id, {
        eventId: a.eventId,
        seq,
        cursor: a.cursor,
        attempts: a.attempt,
        lastError: 'expired',
        lastStatus: a.status,
        deadAt: new Date(now).toISOString(),
      });
    }
    const queue = await this.queues.open(e.id, this.queueOptions(e, e.startSeq));
    const from = Math.max((await queue.state()).lastHandedOut + 1, e.startSeq);
    if (from < firstSeq) {
      this.logger.warn(
        { endpoint: e.id, fromSeq: from, untilSeq: firstSeq - 1 },
        'outbound: events of this range that matched the endpoint were removed by retention before any attempt',
      );
    }
    const d = this.config.delivery;
    const h = await store.health(e.id);
    await store.putHealth(e.id, { ...h, expireBefore: now - retryWindowMs(d.retryScheduleMs, d.jitter) });
  }

  queueOptions(e: EndpointRecord, startSeq: number): DeliveryQueueOptions {
    return {
      filter: coveringPattern(e.patterns),
      startSeq,
      maxInFlight: e.maxInFlight,
      ackWaitMs: ackWaitFor(this.config.delivery),
    };
  }

  /** Pending (in the endpoint's queue and its redelivery jobs' queues), dead, and delivery health. */
  async stateOf(e: EndpointRecord): Promise<EndpointState> {
    const store = await this.endpoints();
    const h = await store.health(e.id);
    const pending = await this.pendingOf(
      e,
      (await store.jobs(e.id)).map((j) => j.id),
    );
    const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
    return {
      pending,
      dead: (await store.dead(e.id)).length,
      lastSuccessAt: iso(h.lastSuccessAt),
      lastFailureAt: iso(h.lastFailureAt),
      failingSince: iso(h.failingSince),
    };
  }

  /** Events waiting in the endpoint's queue and in those of its redelivery jobs. */
  private async pendingOf(e: EndpointRecord, jobIds: string[]): Promise<number> {
    let pending = 0;
    try {
      for (const name of [e.id, ...jobIds.map((j) => jobQueueName(e.id, j))]) {
        const s = await (await this.queues.open(name, this.queueOptions(e, name === e.id ? e.startSeq : 1))).state();
        pending += s.backlog + s.inFlight;
      }
    } catch (err) {
      if (err instanceof StoreUnavailableError) throw err;
    }
    return pending;
  }

  /**
   * For metrics: every endpoint this process knows, with its pending and dead counts. Jobs and dead letters are
   * listed once, queues read a few at a time: with two listings per endpoint, one after the other, a scrape took
   * 5 to 8 s with 1,000 endpoints on JetStream.
   */
  async snapshot(): Promise<{ id: string; status: string; pending: number; dead: number }[]> {
    const records = await this.allRecords();
    const out: { id: string; status: string; pending: number; dead: number }[] = new Array(records.length);
    if (!records.length) return out;
    // Jobs and dead letters in one listing each, not two listings per endpoint.
    const store = await this.endpoints();
    const jobs = new Map<string, string[]>();
    for (const { endpointId, job } of await store.allJobs())
      jobs.set(endpointId, [...(jobs.get(endpointId) ?? []), job.id]);
    const dead = await store.deadCounts();
    let next = 0;
    const reader = async () => {
      for (let i = next++; i < records.length; i = next++) {
        const e = records[i];
        const pending = await this.pendingOf(e, jobs.get(e.id) ?? []);
        out[i] = { id: e.id, status: e.status, pending, dead: dead.get(e.id) ?? 0 };
      }
    };
    await Promise.all(Array.from({ length: SNAPSHOT_CONCURRENCY }, reader));
    return out;
  }
}

export function emptyState(): EndpointState {
  return { pending: 0, dead: 0, lastSuccessAt: null, lastFailureAt: null, failingSince: null };
}
