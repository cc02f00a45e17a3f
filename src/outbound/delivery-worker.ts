/**
 * The delivery worker: for every active endpoint (and every redelivery job), pulls due events from the endpoint's
 * durable queue, POSTs them signed, and settles each by the outcome: ack on 2xx, retry on the schedule, dead after
 * the last attempt, disable on 410 (the event waits) or after `disableAfter` without a 2xx. Every gateway runs one;
 * the queues keep any (endpoint, event) with one gateway at a time, so replicas share the work.
 */
import { encodeCursor } from '../events/cursor.js';
import { coveringPattern, matchesSubject } from '../events/pattern.js';
import type { DeliveryConfig } from '../config/app-config.js';
import type { DeliveryItem, DeliveryQueue, DeliveryQueues } from '../store/delivery-queue.port.js';
import {
  signingSecrets,
  type AttemptRecord,
  type DisabledReason,
  type EndpointHealth,
  type EndpointRecord,
  type RedeliveryJob,
} from './endpoint.js';
import type { EndpointStore } from './endpoint-store.js';
import type { SendResult } from './http-sender.js';
import { nextDelayMs, RateLimiter } from './retry-schedule.js';
import { signStandardWebhook } from './signer.js';

export interface WorkerLogger {
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
  error(o: object, msg?: string): void;
}

export interface DeliveryMetrics {
  attempt(endpointId: string, outcome: 'delivered' | 'failed' | 'gone' | 'dead', storedAtMs: number): void;
}

export interface WorkerDeps {
  queues: DeliveryQueues;
  endpoints: EndpointStore;
  sender: { send(url: URL, headers: Record<string, string>, body: Uint8Array): Promise<SendResult> };
  config: DeliveryConfig;
  /** The stream's epoch, for cursors. */
  epoch: () => string;
  /** Sets an endpoint disabled with a reason (API record or declared-endpoint state). */
  disable: (endpoint: EndpointRecord, reason: DisabledReason) => Promise<void>;
  logger: WorkerLogger;
  userAgent: string;
  metrics?: DeliveryMetrics;
  now?: () => number;
  random?: () => number;
}

/** The main queue of an endpoint is named by its id; redelivery jobs get their own. */
export const jobQueueName = (endpointId: string, jobId: string) => `${endpointId}--r-${jobId}`;

/** How long an attempt may hold an event before another gateway may take it: the request timeout plus a margin. */
export const ackWaitFor = (config: DeliveryConfig) => config.timeoutMs + Math.max(5_000, config.timeoutMs / 2);

const FETCH_WAIT_MS = 1_000;
const MAX_FETCH = 64;
/** A disabled endpoint's event comes back after this; replicas notice the disable within their refresh interval. */
const DISABLED_RETRY_MS = 3_000;

const dec = new TextDecoder();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function envelopeId(data: Uint8Array, seq: number): string {
  try {
    const id = (JSON.parse(dec.decode(data)) as { id?: unknown }).id;
    if (typeof id === 'string' && id.length > 0) return id;
  } catch {
    // not an envelope: fall through
  }
  return `seq_${seq}`;
}

export class DeliveryWorker {
  private readonly runners = new Map<string, EndpointRunner>();
  private stopped = false;
  readonly now: () => number;
  readonly random: () => number;

  constructor(readonly deps: WorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
  }

  /** Brings the running loops in line with the endpoints and jobs (called on every refresh). */
  sync(endpoints: EndpointRecord[], jobs: { endpointId: string; job: RedeliveryJob }[]): void {
    if (this.stopped) return;
    const wanted = new Map(endpoints.filter((e) => e.status === 'active').map((e) => [e.id, e]));
    for (const [id, runner] of this.runners) {
      if (!wanted.has(id)) {
        this.runners.delete(id);
        void runner.stop();
      }
    }
    for (const [id, e] of wanted) {
      let runner = this.runners.get(id);
      if (runner && runner.needsRestart(e)) {
        this.runners.delete(id);
        void runner.stop();
        runner = undefined;
      }
      if (!runner) {
        runner = new EndpointRunner(this, e);
        this.runners.set(id, runner);
        runner.start();
      } else runner.endpoint = e;
      runner.syncJobs(jobs.filter((j) => j.endpointId === id).map((j) => j.job));
    }
  }

  /** Stops pulling; waits for attempts in flight (each ends by the request timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    const runners = [...this.runners.values()];
    this.runners.clear();
    await Promise.allSettled(runners.map((r) => r.stop()));
  }

  /** Active endpoints being delivered by this process. */
  get running(): number {
    return this.runners.size;
  }
}

class EndpointRunner {
  private main?: QueueLoop;
  private readonly jobs = new Map<string, QueueLoop>();
  readonly limiter: RateLimiter;
  health?: EndpointHealth;
  private healthWrittenAt = 0;
  private healthDirty = false;

  constructor(
    readonly worker: DeliveryWorker,
    public endpoint: EndpointRecord,
  ) {
    this.limiter = new RateLimiter(endpoint.rateLimit, worker.now);
  }

  /** The queue's filter or cap changed: the loops restart with the new options. */
  needsRestart(e: EndpointRecord): boolean {
    const cur = this.endpoint;
    return (
      cur.patterns.join('\n') !== e.patterns.join('\n') ||
      cur.maxInFlight !== e.maxInFlight ||
      cur.rateLimit !== e.rateLimit
    );
  }

  start(): void {
    this.main = new QueueLoop(this, this.endpoint.id, null);
    this.main.start();
  }

  syncJobs(jobs: RedeliveryJob[]): void {
    const ids = new Set(jobs.map((j) => j.id));
    for (const [id, loop] of this.jobs) {
      if (!ids.has(id)) {
        this.jobs.delete(id);
        void loop.stop();
      }
    }
    for (const job of jobs) {
      if (this.jobs.has(job.id)) continue;
      const loop = new QueueLoop(this, jobQueueName(this.endpoint.id, job.id), job);
      this.jobs.set(job.id, loop);
      loop.start();
    }
  }

  jobDone(jobId: string): void {
    this.jobs.delete(jobId);
  }

  async stop(): Promise<void> {
    const loops = [this.main, ...this.jobs.values()].filter((l): l is QueueLoop => !!l);
    this.jobs.clear();
    await Promise.allSettled(loops.map((l) => l.stop()));
    clearTimeout(this.healthTimer);
    this.healthTimer = undefined;
    await this.flushHealth(true);
  }

  /** Loaded once (concurrent outcomes share the load, so none works on a copy that is then replaced). */
  loadHealth(): Promise<EndpointHealth> {
    this.healthLoad ??= this.worker.deps.endpoints.health(this.endpoint.id).then(
      (h) => (this.health = h),
      (err: unknown) => {
        this.healthLoad = undefined;
        throw err;
      },
    );
    return this.healthLoad;
  }
  private healthLoad?: Promise<EndpointHealth>;
  private healthTimer?: NodeJS.Timeout;

  /** Records an outcome; written through on a change of state, else at most once a second. */
  async noteOutcome(ok: boolean): Promise<void> {
    const h = await this.loadHealth();
    const now = this.worker.now();
    const changed = ok ? h.failingSince !== null : h.failingSince === null;
    if (ok) {
      h.lastSuccessAt = now;
      h.failingSince = null;
    } else {
      h.lastFailureAt = now;
      h.failingSince ??= now;
    }
    this.healthDirty = true;
    await this.flushHealth(changed);
    if (!ok && h.failingSince !== null && now - h.failingSince >= this.worker.deps.config.disableAfterMs) {
      await this.disable('failing');
    }
  }

  private async flushHealth(force: boolean): Promise<void> {
    if (!this.health || !this.healthDirty) return;
    const now = this.worker.now();
    if (!force && now - this.healthWrittenAt < 1_000) {
      // Written a moment ago: this change goes out with a trailing write, so the last outcome is never left unwritten.
      this.healthTimer ??= setTimeout(() => {
        this.healthTimer = undefined;
        void this.flushHealth(true);
      }, 1_000);
      return;
    }
    this.healthDirty = false;
    this.healthWrittenAt = now;
    try {
      const stored = await this.worker.deps.endpoints.health(this.endpoint.id);
      await this.worker.deps.endpoints.putHealth(this.endpoint.id, {
        ...stored,
        ...this.health,
        disabledReason: stored.disabledReason,
      });
    } catch (err) {
      this.healthDirty = true;
      this.worker.deps.logger.warn({ endpoint: this.endpoint.id, err: String(err) }, 'cannot record endpoint health');
    }
  }

  async disable(reason: DisabledReason): Promise<void> {
    if (this.endpoint.status === 'disabled') return;
    this.endpoint = { ...this.endpoint, status: 'disabled', disabledReason: reason };
    this.worker.deps.logger.warn({ endpoint: this.endpoint.id, reason }, 'outbound endpoint disabled');
    try {
      await this.worker.deps.disable(this.endpoint, reason);
    } catch (err) {
      this.worker.deps.logger.error({ endpoint: this.endpoint.id, err: String(err) }, 'cannot record the disable');
    }
  }
}

class QueueLoop {
  private stopped = false;
  private running?: Promise<void>;
  private inFlight = 0;
  private readonly settled = new Set<Promise<void>>();
  private wake?: () => void;

  constructor(
    private readonly runner: EndpointRunner,
    private readonly queueName: string,
    private readonly job: RedeliveryJob | null,
  ) {}

  private get deps(): WorkerDeps {
    return this.runner.worker.deps;
  }

  start(): void {
    this.running = this.run().catch((err: unknown) =>
      this.deps.logger.error({ queue: this.queueName, err: String(err) }, 'delivery loop failed'),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.running;
    await Promise.allSettled([...this.settled]);
  }

  private async open(): Promise<DeliveryQueue | null> {
    const e = this.runner.endpoint;
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        return await this.deps.queues.open(this.queueName, {
          filter: coveringPattern(e.patterns),
          startSeq: this.job ? this.job.fromSeq : e.startSeq,
          maxInFlight: e.maxInFlight,
          ackWaitMs: ackWaitFor(this.deps.config),
        });
      } catch (err) {
        if (attempt % 20 === 0)
          this.deps.logger.warn({ queue: this.queueName, err: String(err) }, 'cannot open delivery queue; retrying');
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(attempt, 4)));
      }
    }
    return null;
  }

  private async run(): Promise<void> {
    const queue = await this.open();
    if (!queue) return;
    let failures = 0;
    while (!this.stopped) {
      const e = this.runner.endpoint;
      if (e.status !== 'active') break;
      const room = e.maxInFlight - this.inFlight;
      if (room <= 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const wait = this.runner.limiter.waitMs();
      if (wait > 0) {
        await sleep(wait);
        continue;
      }
      // A rate-limited endpoint takes one event at a time, so nothing waits for a token past its ack deadline.
      const max = Math.min(room, MAX_FETCH, e.rateLimit ? 1 : MAX_FETCH);
      let items: DeliveryItem[];
      // No hand-out in this fetch is older than this, whatever this process's clock saw since (a freeze, a long GC).
      const pulledAt = this.runner.worker.now();
      try {
        items = await queue.fetch(max, FETCH_WAIT_MS);
        failures = 0;
      } catch (err) {
        if (failures++ % 20 === 0) this.deps.logger.warn({ queue: this.queueName, err: String(err) }, 'fetch failed');
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 4)));
        continue;
      }
      if (this.stopped || this.runner.endpoint.status !== 'active') {
        // Not ours to send any more: back to the queue for whoever comes next.
        for (const item of items) await item.retry(1).catch(() => undefined);
        break;
      }
      for (const item of items) {
        this.runner.limiter.take();
        this.inFlight++;
        const p: Promise<void> = this.handle(item, pulledAt)
          .catch((err: unknown) =>
            this.deps.logger.error({ queue: this.queueName, err: String(err) }, 'delivery failed'),
          )
          .finally(() => {
            this.inFlight--;
            this.settled.delete(p);
            this.wake?.();
            this.wake = undefined;
          });
        this.settled.add(p);
      }
      if (this.job && items.length === 0 && this.inFlight === 0 && (await this.jobComplete(queue))) return;
    }
  }

  private async jobComplete(queue: DeliveryQueue): Promise<boolean> {
    const job = this.job!;
    try {
      const s = await queue.state();
      if (s.inFlight > 0 || (s.lastHandedOut < job.untilSeq && s.backlog > 0)) return false;
      const id = this.runner.endpoint.id;
      await this.deps.queues.delete(this.queueName);
      await this.deps.endpoints.removeJob(id, job.id);
      this.runner.jobDone(job.id);
      this.deps.logger.info({ endpoint: id, job: job.id }, 'redelivery done');
      return true;
    } catch {
      return false;
    }
  }

  /** One event: skip it when it is not for this endpoint or no longer ours, else one attempt and its outcome. */
  private async handle(item: DeliveryItem, pulledAt: number): Promise<void> {
    const e = this.runner.endpoint;
    const job = this.job;
    const wanted =
      e.patterns.some((p) => matchesSubject(p, item.subject)) &&
      (!job || (item.seq >= job.fromSeq && item.seq <= job.untilSeq && (!job.seqs || job.seqs.includes(item.seq))));
    if (!wanted) return item.ack();
    if (e.status !== 'active') return item.retry(DISABLED_RETRY_MS);

    const worker = this.runner.worker;
    const deps = this.deps;
    const now = worker.now();
    // A hand-out whose request could outlast its ack wait is no longer ours (this process was frozen after the
    // fetch): the queue hands it to someone else, so sending it now would attempt it twice at once. Leave it.
    if (now - pulledAt > ackWaitFor(deps.config) - deps.config.timeoutMs) {
      deps.logger.warn({ endpoint: e.id, seq: item.seq, heldMs: now - pulledAt }, 'stale hand-out left to the queue');
      return;
    }
    const id = envelopeId(item.data, item.seq);
    const cursor = encodeCursor({ epoch: deps.epoch(), seq: item.seq });
    const ts = Math.floor(now / 1000);
    const headers: Record<string, string> = {
      ...e.headers,
      'content-type': 'application/json',
      'user-agent': deps.userAgent,
      'webhook-id': id,
      'webhook-timestamp': String(ts),
      'webhook-signature': signStandardWebhook(id, ts, item.data, signingSecrets(e, now)),
      'hookstream-cursor': cursor,
      'hookstream-attempt': String(item.attempt),
    };
    const result = await deps.sender.send(new URL(e.url), headers, item.data);
    const at = new Date(now).toISOString();
    const record: AttemptRecord = {
      eventId: id,
      seq: item.seq,
      cursor,
      attempt: item.attempt,
      at,
      durationMs: result.durationMs,
      status: result.status,
      error: result.error,
      response: result.response,
    };
    await deps.endpoints
      .putAttempt(e.id, record)
      .catch((err: unknown) => deps.logger.warn({ endpoint: e.id, err: String(err) }, 'cannot record the attempt'));

    const ok = result.error === null && result.status !== null && result.status >= 200 && result.status < 300;
    if (ok) {
      await item.ack();
      deps.metrics?.attempt(e.id, 'delivered', item.time);
      await this.runner.noteOutcome(true);
      return;
    }
    if (result.status === 410) {
      // Gone: stop sending to it, keep the event for when it is set active again.
      deps.metrics?.attempt(e.id, 'gone', item.time);
      await this.runner.disable('gone');
      await item.retry(DISABLED_RETRY_MS);
      return;
    }
    const delay = nextDelayMs(
      item.attempt,
      deps.config.retryScheduleMs,
      deps.config.jitter,
      worker.random,
      result.retryAfterMs,
    );
    if (delay === null) {
      await deps.endpoints.putDead(e.id, {
        eventId: id,
        seq: item.seq,
        cursor,
        attempts: item.attempt,
        lastError: result.error,
        lastStatus: result.status,
        deadAt: at,
      });
      await item.drop();
      deps.metrics?.attempt(e.id, 'dead', item.time);
    } else {
      await item.retry(delay);
      deps.metrics?.attempt(e.id, 'failed', item.time);
    }
    await this.runner.noteOutcome(false);
  }
}
