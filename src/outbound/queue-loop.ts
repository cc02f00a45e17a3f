/**
 * One delivery queue drained for one endpoint (its main queue, or a redelivery job's): open it (retrying while the
 * store is away), pull up to the room `maxInFlight` and `rateLimit` leave, hand each event to an attempt, and finish
 * a job once its range is through. Events the queue hands out that the endpoint does not want are acked here; on the
 * main queue, those that expired while the endpoint was disabled go dead unsent.
 */
import { coveringPattern, matchesSubject } from '../events/pattern.js';
import type { DeliveryItem, DeliveryQueue } from '../store/delivery-queue.port.js';
import { attemptDelivery, DISABLED_RETRY_MS, expireDelivery } from './delivery-attempt.js';
import { ackWaitFor, type WorkerDeps } from './delivery-deps.js';
import type { RedeliveryJob } from './endpoint.js';
import type { EndpointRunner } from './endpoint-runner.js';
import type { Holding } from './in-flight.js';

const FETCH_WAIT_MS = 1_000;
const MAX_FETCH = 64;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class QueueLoop {
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
      // A hand-out of an event this process already holds (its ack wait ran out meanwhile) joins that one.
      const holdings = this.runner.worker.holdings;
      const claimed: Holding[] = [];
      for (const item of items) {
        const h = holdings.claim(this.queueName, item, pulledAt);
        if (h) claimed.push(h);
      }
      if (this.stopped || this.runner.endpoint.status !== 'active') {
        // Not ours to send any more: back to the queue for whoever comes next.
        for (const h of claimed) {
          holdings.release(h);
          await h.item.retry(1).catch(() => undefined);
        }
        break;
      }
      for (const h of claimed) {
        this.runner.limiter.take();
        this.inFlight++;
        const p: Promise<void> = this.handle(h)
          .catch((err: unknown) =>
            this.deps.logger.error({ queue: this.queueName, err: String(err) }, 'delivery failed'),
          )
          .finally(() => {
            holdings.release(h);
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

  /**
   * One event: skip it when it is not for this endpoint or no longer ours, else one attempt and its outcome. The
   * holding's hand-out may be replaced meanwhile (handed out again to this process): the request uses the newest.
   */
  private async handle(h: Holding): Promise<void> {
    const e = this.runner.endpoint;
    const job = this.job;
    const { seq, subject } = h.item;
    const holdings = this.runner.worker.holdings;
    const wanted =
      e.patterns.some((p) => matchesSubject(p, subject)) &&
      (!job || (seq >= job.fromSeq && seq <= job.untilSeq && (!job.seqs || job.seqs.includes(seq))));
    if (!wanted) return h.item.ack();
    if (e.status !== 'active') return h.item.retry(DISABLED_RETRY_MS);
    if (!job) {
      const { expireBefore } = await this.runner.loadHealth();
      if (expireBefore != null && h.item.time < expireBefore)
        return expireDelivery(this.runner, e, holdings.current(h));
    }
    // Checked right before the request: a hand-out whose request could outlast its ack wait is no longer ours (this
    // process was held up since the fetch): the queue hands it to someone else, so sending it now would attempt it
    // twice at once. Leave it.
    const heldMs = this.runner.worker.now() - h.pulledAt;
    if (heldMs > ackWaitFor(this.deps.config) - this.deps.config.timeoutMs) {
      this.deps.logger.warn({ endpoint: e.id, seq, heldMs }, 'stale hand-out left to the queue');
      return;
    }
    return attemptDelivery(this.runner, e, holdings.current(h));
  }
}
