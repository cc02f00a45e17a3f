/**
 * Per-connection budget for client → server Socket.IO messages (`limits.messagesPerSecond`, `limits.messageBurst`):
 * a token bucket holding `burst` tokens, refilled at `perSecond`. A message without a token is refused (the
 * transport acks it `limit_exceeded` without doing any work); a client that sends a further full burst while
 * every message is being refused is flooding, and the transport closes it (reason `rate_limited`), so a client
 * that never reads its acks cannot make the gateway queue answers without bound. Pure; the clock is injected.
 */
export type RateVerdict = 'allow' | 'refuse' | 'disconnect';

export class MessageRateLimiter {
  private tokens: number;
  private last: number;
  private refusedInRow = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(perSecond > 0) || !(burst >= 1)) throw new RangeError('perSecond must be > 0 and burst >= 1');
    this.tokens = burst;
    this.last = now();
  }

  take(): RateVerdict {
    const t = this.now();
    // A clock stepping back refills nothing (and never drains).
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.refusedInRow = 0;
      return 'allow';
    }
    this.refusedInRow++;
    return this.refusedInRow >= this.burst ? 'disconnect' : 'refuse';
  }
}
