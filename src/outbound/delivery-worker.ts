/**
 * The delivery worker: for every active endpoint (and every redelivery job), pulls due events from the endpoint's
 * durable queue, POSTs them signed, and settles each by the outcome: ack on 2xx, retry on the schedule, dead after
 * the last attempt, disable on 410 (the event waits) or after `disableAfter` without a 2xx. Every gateway runs one;
 * the queues keep any (endpoint, event) with one gateway at a time, so replicas share the work.
 *
 * This file starts and stops one runner per active endpoint (endpoint-runner.ts: health, disable, its queues); a
 * queue loop (queue-loop.ts) pulls and schedules; one attempt and its outcome are delivery-attempt.ts.
 */
import { ackWaitFor, type WorkerDeps } from './delivery-deps.js';
import type { EndpointRecord, RedeliveryJob } from './endpoint.js';
import { EndpointRunner } from './endpoint-runner.js';
import { InFlightDeliveries } from './in-flight.js';

export { ackWaitFor, jobQueueName, type DeliveryMetrics, type WorkerDeps, type WorkerLogger } from './delivery-deps.js';

export class DeliveryWorker {
  private readonly runners = new Map<string, EndpointRunner>();
  private stopped = false;
  readonly now: () => number;
  readonly random: () => number;
  /** Every hand-out this process holds, whichever loop pulled it (one event is never attempted twice at once here). */
  readonly holdings: InFlightDeliveries;

  constructor(readonly deps: WorkerDeps) {
    this.now = deps.now ?? Date.now;
    this.random = deps.random ?? Math.random;
    this.holdings = new InFlightDeliveries(this.now, ackWaitFor(deps.config));
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
