/**
 * One delivery attempt and its outcome: sign and POST the stored envelope, log the attempt, then settle the event —
 * ack on 2xx; on 410 disable the endpoint and keep the event; else retry after the schedule's next delay (Retry-After
 * honoured) or, after the last attempt, record it dead. Every outcome feeds the endpoint's health. An event that
 * expired while its endpoint was disabled is recorded dead without an attempt.
 */
import { encodeCursor } from '../events/cursor.js';
import type { DeliveryItem } from '../store/delivery-queue.port.js';
import { signingSecrets, type AttemptRecord, type EndpointRecord } from './endpoint.js';
import type { EndpointRunner } from './endpoint-runner.js';
import { nextDelayMs } from './retry-schedule.js';
import { signStandardWebhook } from './signer.js';

/** A disabled endpoint's event comes back after this; replicas notice the disable within their refresh interval. */
export const DISABLED_RETRY_MS = 3_000;

const dec = new TextDecoder();

/** The envelope's `id` (the `webhook-id`); `seq_<n>` for a body that is not an envelope. */
export function envelopeId(data: Uint8Array, seq: number): string {
  try {
    const id = (JSON.parse(dec.decode(data)) as { id?: unknown }).id;
    if (typeof id === 'string' && id.length > 0) return id;
  } catch {
    // not an envelope: fall through
  }
  return `seq_${seq}`;
}

/** Sends `item` to `e` once and settles it by the outcome. */
export async function attemptDelivery(runner: EndpointRunner, e: EndpointRecord, item: DeliveryItem): Promise<void> {
  const worker = runner.worker;
  const deps = worker.deps;
  const now = worker.now();
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
    await runner.noteOutcome(true);
    return;
  }
  if (result.status === 410) {
    // Gone: stop sending to it, keep the event for when it is set active again.
    deps.metrics?.attempt(e.id, 'gone', item.time);
    await runner.disable('gone');
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
  await runner.noteOutcome(false);
}

/** An event stored before the endpoint's expiry cut-off (it outlived the retry window while disabled): dead, unsent. */
export async function expireDelivery(runner: EndpointRunner, e: EndpointRecord, item: DeliveryItem): Promise<void> {
  const deps = runner.worker.deps;
  await deps.endpoints.putDead(e.id, {
    eventId: envelopeId(item.data, item.seq),
    seq: item.seq,
    cursor: encodeCursor({ epoch: deps.epoch(), seq: item.seq }),
    // This hand-out is not an attempt.
    attempts: item.attempt - 1,
    lastError: 'expired',
    lastStatus: null,
    deadAt: new Date(runner.worker.now()).toISOString(),
  });
  await item.drop();
  deps.metrics?.attempt(e.id, 'dead', item.time);
}
