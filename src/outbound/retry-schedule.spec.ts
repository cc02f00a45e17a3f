import { describe, expect, it } from '@jest/globals';
import { nextDelayMs, RateLimiter, retryWindowMs } from './retry-schedule.js';

const schedule = [5_000, 300_000, 1_800_000];

describe('nextDelayMs', () => {
  it('follows the schedule, attempt by attempt, and ends after the last delay', () => {
    const mid = () => 0.5; // no spread
    expect([1, 2, 3].map((a) => nextDelayMs(a, schedule, 0.2, mid))).toEqual(schedule);
    expect(nextDelayMs(4, schedule, 0.2, mid)).toBeNull();
  });

  it('spreads each delay by at most ±jitter', () => {
    expect(nextDelayMs(1, schedule, 0.2, () => 0)).toBe(4_000);
    expect(nextDelayMs(1, schedule, 0.2, () => 0.999999)).toBeCloseTo(6_000, -1);
    for (let i = 0; i < 200; i++) {
      const d = nextDelayMs(2, schedule, 0.2, Math.random)!;
      expect(d).toBeGreaterThanOrEqual(240_000);
      expect(d).toBeLessThanOrEqual(360_000);
    }
  });

  it('waits at least a receiver’s Retry-After, capped at the largest delay', () => {
    expect(nextDelayMs(1, schedule, 0, () => 0.5, 60_000)).toBe(60_000);
    expect(nextDelayMs(1, schedule, 0, () => 0.5, 1_000)).toBe(5_000);
    expect(nextDelayMs(1, schedule, 0, () => 0.5, 86_400_000)).toBe(1_800_000);
    expect(nextDelayMs(3, schedule, 0, () => 0.5, 60_000)).toBe(1_800_000);
    expect(nextDelayMs(4, schedule, 0, () => 0.5, 60_000)).toBeNull();
  });
});

describe('RateLimiter', () => {
  it('spaces takes evenly at the rate, and never limits without one', () => {
    let now = 1_000;
    const r = new RateLimiter(4, () => now);
    expect(r.waitMs()).toBe(0);
    r.take();
    expect(r.waitMs()).toBe(250);
    now += 100;
    expect(r.waitMs()).toBe(150);
    now += 150;
    expect(r.waitMs()).toBe(0);
    const none = new RateLimiter(null, () => now);
    none.take();
    none.take();
    expect(none.waitMs()).toBe(0);
  });
});

describe('retryWindowMs', () => {
  it('is the whole schedule with every delay at its largest jitter: no retried event is older', () => {
    expect(retryWindowMs(schedule, 0.2)).toBe(Math.round((5_000 + 300_000 + 1_800_000) * 1.2));
    let latest = 0;
    for (let a = 1; a <= schedule.length; a++) latest += nextDelayMs(a, schedule, 0.2, () => 0.999999)!;
    expect(latest).toBeLessThanOrEqual(retryWindowMs(schedule, 0.2));
    expect(retryWindowMs([1_000, 1_000], 0)).toBe(2_000);
  });
});
