/**
 * What the delivery worker's parts (delivery-worker.ts, endpoint-runner.ts, queue-loop.ts, delivery-attempt.ts)
 * share: their dependencies, the logger and metrics they report to, queue naming and the ack deadline. Kept apart so
 * the parts import it, not each other.
 */
import type { DeliveryConfig } from '../config/app-config.js';
import type { DeliveryQueues } from '../store/delivery-queue.port.js';
import type { DisabledReason, EndpointRecord } from './endpoint.js';
import type { EndpointStore } from './endpoint-store.js';
import type { SendResult } from './http-sender.js';

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
