/** Small helpers shared by the parts of the JetStream store. */
import { createHash } from 'node:crypto';
import { JetStreamApiCodes, JetStreamApiError, type JsMsg, type StreamInfo } from '@nats-io/jetstream';
import { StoreUnavailableError, type StoredEvent, type StreamState } from '../event-store.port.js';

export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Upper bound for one management call (stream info, consumer create, …). */
export const ADMIN_TIMEOUT_MS = 5_000;

export const nanos = (ms: number): number => Math.round(ms * 1_000_000);

/** One incarnation of a stream: its name and creation time, hashed to `[0-9a-f]{12}`. */
export function epochOf(name: string, created: string): string {
  return createHash('sha256').update(`${name}|${created}`).digest('hex').slice(0, 12);
}

/** KV keys allow only `[-/_=.a-zA-Z0-9]`, so the msgId is hashed. */
export function idempotencyKey(msgId: string): string {
  return createHash('sha256').update(msgId).digest('hex');
}

/** Port view of stream info. 2.9 reports first_seq 0 for a never-used stream and last_seq + 1 after a purge. */
export function streamStateOf(info: StreamInfo): StreamState {
  const lastSeq = info.state.last_seq;
  const firstSeq = info.state.messages === 0 ? lastSeq + 1 : info.state.first_seq;
  return { epoch: epochOf(info.config.name, info.created), firstSeq, lastSeq };
}

export function toStoredEvent(m: JsMsg): StoredEvent {
  return {
    seq: m.seq,
    subject: m.subject,
    data: m.data,
    // The bigint getter is exact; `info.timestampNanos` is a lossy number.
    time: Number(m.timestampNanos / 1_000_000n),
  };
}

export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Nothing answered on the subject: JetStream is off, or the stream or bucket behind it is gone. */
export function isNoResponders(err: unknown): boolean {
  return err instanceof Error && /no responders|not enabled/i.test(err.message);
}

export function isStreamNotFound(err: unknown): boolean {
  return (
    (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) ||
    (err instanceof Error && err.message === 'stream not found')
  );
}

export function unavailable(what: string, err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  return new StoreUnavailableError(`${what}: ${describeError(err)}`, { cause: err });
}

/**
 * Rejects with a StoreUnavailableError when `promise` has not settled within `ms`. The deadline is judged in the
 * check phase after the timer: when the event loop was busy past it, the timer runs before the socket is read,
 * and an answer that came meanwhile (read in the poll phase between the two) still wins.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let judge: NodeJS.Immediate | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      judge = setImmediate(() => reject(new StoreUnavailableError(`${what}: no answer within ${ms} ms`)));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
    clearImmediate(judge);
  }
}

/** A sleep that `cancel()` ends early (used for backoffs that stop() must not wait out). */
export function cancellableDelay(ms: number): { promise: Promise<void>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let done!: () => void;
  const promise = new Promise<void>((resolve) => {
    done = resolve;
    timer = setTimeout(resolve, ms);
  });
  return {
    promise,
    cancel: () => {
      clearTimeout(timer);
      done();
    },
  };
}

/** Exponential backoff with full jitter on the upper half, capped. */
export function backoffMs(attempt: number, baseMs = 250, capMs = 5_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}
