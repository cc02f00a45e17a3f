/**
 * One active endpoint on this process: its main queue loop and one loop per redelivery job, the rate limiter they
 * share, the endpoint's delivery health (loaded once, written through on a change of state, else at most once a
 * second) and the disable it may trigger (410, or no 2xx for `disableAfter`).
 */
import type { EndpointHealth, EndpointRecord, DisabledReason, RedeliveryJob } from './endpoint.js';
import { jobQueueName } from './delivery-deps.js';
import type { DeliveryWorker } from './delivery-worker.js';
import { QueueLoop } from './queue-loop.js';
import { RateLimiter } from './retry-schedule.js';

export class EndpointRunner {
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
      // Only the delivery clocks are this runner's: the disable and the expiry cut-off are written by others.
      const { lastSuccessAt, lastFailureAt, failingSince } = this.health;
      await this.worker.deps.endpoints.putHealth(this.endpoint.id, {
        ...stored,
        lastSuccessAt,
        lastFailureAt,
        failingSince,
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
