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

interface Waiter {
  owner: object;
  grant: () => void;
}

/** Gives the slot back (call it exactly once; later calls do nothing). */
export type Release = (() => void) & {
  /** The slot was not free at once: the caller queued for it, so others contend for slots. */
  readonly waited: boolean;
};

/**
 * Counting semaphore shared fairly between owners (client connections): an owner holds at most `perOwner`
 * slots, and free slots go round-robin over the owners that wait (each owner's own waiters in order), so one
 * client queueing many reads cannot push another client's read to the back. Waiters leave when their signal
 * aborts. Without an owner, every acquire is its own owner: plain first-come, first-served.
 */
export class Semaphore {
  private active = 0;
  private queued = 0;
  private readonly held = new Map<object, number>();
  /** Waiters per owner; the map's insertion order is the round-robin order (a served owner moves to the back). */
  private readonly queues = new Map<object, Waiter[]>();

  constructor(
    private readonly limit: number,
    private readonly perOwner = limit,
  ) {}

  get inUse(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queued;
  }

  /** Resolves with a release function (call it exactly once), or null when the signal aborted first. */
  acquire(signal: AbortSignal, owner: object = {}): Promise<Release | null> {
    if (signal.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      let queued = false;
      const waiter: Waiter = {
        owner,
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(this.releaser(owner, queued));
        },
      };
      const onAbort = () => {
        const q = this.queues.get(owner);
        const i = q ? q.indexOf(waiter) : -1;
        if (q && i >= 0) {
          q.splice(i, 1);
          this.queued--;
          if (q.length === 0) this.queues.delete(owner);
        }
        resolve(null);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const q = this.queues.get(owner);
      if (q) q.push(waiter);
      else this.queues.set(owner, [waiter]);
      this.queued++;
      this.dispatch();
      queued = true; // granted from here on means granted after a wait
    });
  }

  /** Grants free slots to the first waiting owners, in rotation, that are under their own cap. */
  private dispatch(): void {
    while (this.active < this.limit && this.queued > 0) {
      let next: Waiter | undefined;
      for (const [owner, q] of this.queues) {
        if ((this.held.get(owner) ?? 0) >= this.perOwner) continue;
        next = q.shift() as Waiter;
        this.queues.delete(owner);
        if (q.length > 0) this.queues.set(owner, q);
        break;
      }
      if (!next) return;
      this.queued--;
      this.active++;
      this.held.set(next.owner, (this.held.get(next.owner) ?? 0) + 1);
      next.grant();
    }
  }

  private releaser(owner: object, waited: boolean): Release {
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.active--;
      const n = (this.held.get(owner) ?? 1) - 1;
      if (n > 0) this.held.set(owner, n);
      else this.held.delete(owner);
      this.dispatch();
    };
    return Object.assign(release, { waited });
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
