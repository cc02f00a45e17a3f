/** When the next attempt goes out. Pure: randomness is injected. */

/**
 * The delay after failed attempt `attempt` (1-based), spread by ±jitter; null when it was the last attempt.
 * A Retry-After from the receiver (429/503) pushes it later, never beyond the schedule's largest delay.
 */
export function nextDelayMs(
  attempt: number,
  scheduleMs: readonly number[],
  jitter: number,
  random: () => number,
  retryAfterMs: number | null = null,
): number | null {
  if (attempt > scheduleMs.length) return null;
  const base = scheduleMs[Math.max(0, attempt - 1)];
  const spread = base * jitter * (random() * 2 - 1);
  const delay = Math.max(0, Math.round(base + spread));
  if (retryAfterMs === null) return delay;
  return Math.max(delay, Math.min(retryAfterMs, Math.max(...scheduleMs)));
}

/** How long the schedule can keep retrying one event, at most: every delay at its largest jitter. */
export function retryWindowMs(scheduleMs: readonly number[], jitter: number): number {
  return Math.round(scheduleMs.reduce((a, b) => a + b, 0) * (1 + jitter));
}

/** A token bucket of one: at most `perSecond` takes per second, evenly spaced. */
export class RateLimiter {
  private nextAt = 0;

  constructor(
    private readonly perSecond: number | null,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds to wait before the next take is allowed (0 = now). */
  waitMs(): number {
    if (!this.perSecond) return 0;
    return Math.max(0, this.nextAt - this.now());
  }

  take(): void {
    if (!this.perSecond) return;
    this.nextAt = Math.max(this.nextAt, this.now()) + 1000 / this.perSecond;
  }
}
