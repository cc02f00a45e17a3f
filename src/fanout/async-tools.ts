/** Small abortable waits used by the catch-up loops. */
import type { DeliverySink } from './fanout.types.js';

/** Resolves after ms, or at once (false) when the signal aborts. True when the full delay elapsed. */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Waits for the sink's drain callback. Resolves true when drained, false when aborted or after `timeoutMs`
 * (if given). The sink's one-shot callback cannot be unregistered; a late call is harmless.
 */
export function waitDrained(sink: DeliverySink, signal: AbortSignal, timeoutMs?: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (v: boolean) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = () => finish(false);
    signal.addEventListener('abort', onAbort, { once: true });
    if (timeoutMs !== undefined) timer = setTimeout(() => finish(false), timeoutMs);
    sink.onceDrained(() => finish(true));
  });
}

/** Counting semaphore whose waiters leave the queue when their signal aborts. */
export class Semaphore {
  private active = 0;
  private readonly waiters: { grant: () => void }[] = [];

  constructor(private readonly limit: number) {}

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Resolves with a release function (call it exactly once), or null when the signal aborted first. */
  acquire(signal: AbortSignal): Promise<(() => void) | null> {
    if (signal.aborted) return Promise.resolve(null);
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve) => {
      const waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(null);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // The slot passes straight to the next waiter, so `active` stays the same.
      if (next) next.grant();
      else this.active--;
    };
  }
}

/**
 * Shares one async read among concurrent callers. A caller joins the next call issued after it asked, never
 * one already in flight (so it sees, e.g., a purge that finished before it asked); at most one call runs.
 * A storm of N concurrent callers costs two calls, not N.
 */
export class SharedCall<T> {
  private queued: { resolve: (v: T) => void; reject: (e: unknown) => void }[] | null = null;
  private inFlight = false;

  constructor(private readonly fn: () => Promise<T>) {}

  get(): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      (this.queued ??= []).push({ resolve, reject });
      if (!this.inFlight) this.issue();
    });
  }

  private issue(): void {
    const batch = this.queued;
    this.queued = null;
    if (!batch) return;
    this.inFlight = true;
    let call: Promise<T>;
    try {
      call = this.fn();
    } catch (err) {
      call = Promise.reject(err);
    }
    call
      .then(
        (v) => batch.forEach((w) => w.resolve(v)),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.inFlight = false;
        this.issue();
      });
  }
}
