import { describe, expect, it } from '@jest/globals';
import { Backoff } from './backoff.js';

describe('Backoff', () => {
  it('doubles from the minimum up to the maximum, jittered between half and all of each step', () => {
    const low = new Backoff({ minDelayMs: 100, maxDelayMs: 1000 }, () => 0);
    const high = new Backoff({ minDelayMs: 100, maxDelayMs: 1000 }, () => 0.999999);
    expect(Array.from({ length: 6 }, () => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    expect(Array.from({ length: 6 }, () => high.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('starts over after reset()', () => {
    const b = new Backoff({ minDelayMs: 100, maxDelayMs: 1000 }, () => 0);
    b.next();
    b.next();
    expect(b.failures).toBe(2);
    b.reset();
    expect(b.next()).toBe(50);
  });

  it('a prompt reconnect is a spread within the minimum delay and does not grow the backoff', () => {
    const b = new Backoff({ minDelayMs: 200 }, () => 0.5);
    expect(b.prompt()).toBe(100);
    expect(b.failures).toBe(0);
  });

  it('defaults to 250 ms .. 10 s and never overflows', () => {
    const b = new Backoff({}, () => 0.999999);
    let last = 0;
    for (let i = 0; i < 100; i++) last = b.next();
    expect(last).toBe(10_000);
    expect(b.minDelayMs).toBe(250);
  });
});
