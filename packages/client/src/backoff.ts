/** Exponential backoff with jitter for reconnects: pure, the random source is injectable for tests. */
import type { ReconnectOptions } from './types.js';

export const DEFAULT_MIN_DELAY_MS = 250;
export const DEFAULT_MAX_DELAY_MS = 10_000;

export class Backoff {
  private attempts = 0;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;

  constructor(
    options: ReconnectOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.minDelayMs = Math.max(1, options.minDelayMs ?? DEFAULT_MIN_DELAY_MS);
    this.maxDelayMs = Math.max(this.minDelayMs, options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
  }

  /**
   * The delay before the next attempt: min·2^n capped at max, then jittered down to between half and all of it,
   * so clients dropped together (a deploy) do not come back together.
   */
  next(): number {
    const ceiling = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** Math.min(this.attempts, 30));
    this.attempts++;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  /** A short random delay for a reconnect the server asked for (shutdown): no growth, only spreading. */
  prompt(): number {
    return Math.round(this.random() * this.minDelayMs);
  }

  reset(): void {
    this.attempts = 0;
  }

  get failures(): number {
    return this.attempts;
  }
}
