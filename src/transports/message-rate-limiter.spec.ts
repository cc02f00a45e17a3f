import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { MessageRateLimiter, type RateVerdict } from './message-rate-limiter.js';

describe('MessageRateLimiter', () => {
  it('allows a full burst at once, then refuses, then disconnects after a further burst of refusals', () => {
    const limiter = new MessageRateLimiter(10, 5, () => 0);
    const verdicts = Array.from({ length: 11 }, () => limiter.take());
    expect(verdicts).toEqual([
      ...Array<RateVerdict>(5).fill('allow'),
      ...Array<RateVerdict>(4).fill('refuse'),
      'disconnect',
      'disconnect',
    ]);
  });

  it('refills at the sustained rate, never above the burst', () => {
    let now = 0;
    const limiter = new MessageRateLimiter(10, 5, () => now);
    for (let i = 0; i < 5; i++) expect(limiter.take()).toBe('allow');
    expect(limiter.take()).toBe('refuse');
    now += 100; // one token
    expect(limiter.take()).toBe('allow');
    expect(limiter.take()).toBe('refuse');
    now += 60_000; // a long pause fills the bucket to 5, not 600
    for (let i = 0; i < 5; i++) expect(limiter.take()).toBe('allow');
    expect(limiter.take()).toBe('refuse');
  });

  it('an allowed message resets the refusal count', () => {
    let now = 0;
    const limiter = new MessageRateLimiter(10, 3, () => now);
    for (let i = 0; i < 3; i++) limiter.take();
    expect(limiter.take()).toBe('refuse');
    expect(limiter.take()).toBe('refuse');
    now += 100;
    expect(limiter.take()).toBe('allow');
    expect(limiter.take()).toBe('refuse');
    expect(limiter.take()).toBe('refuse');
    expect(limiter.take()).toBe('disconnect');
  });

  it('a clock stepping back neither refills nor throws', () => {
    let now = 1_000_000;
    const limiter = new MessageRateLimiter(10, 2, () => now);
    limiter.take();
    limiter.take();
    now -= 500_000;
    expect(limiter.take()).toBe('refuse');
  });

  it('refuses nonsense limits', () => {
    expect(() => new MessageRateLimiter(0, 5)).toThrow(RangeError);
    expect(() => new MessageRateLimiter(5, 0)).toThrow(RangeError);
  });

  it('never allows more than burst + rate × elapsed messages (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 500 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 500 }),
        (rate, burst, gaps) => {
          let now = 0;
          const limiter = new MessageRateLimiter(rate, burst, () => now);
          let allowed = 0;
          for (const gap of gaps) {
            now += gap;
            if (limiter.take() === 'allow') allowed++;
          }
          expect(allowed).toBeLessThanOrEqual(burst + Math.floor((rate * now) / 1000));
        },
      ),
    );
  });

  it('a client staying within the rate is never refused (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 500 }),
        fc.nat({ max: 300 }),
        (rate, burst, n) => {
          let now = 0;
          const limiter = new MessageRateLimiter(rate, burst, () => now);
          for (let i = 0; i < n; i++) {
            now += Math.ceil(1000 / rate);
            expect(limiter.take()).toBe('allow');
          }
        },
      ),
    );
  });
});
