/** The Overview's rates and lag quantiles, against values worked out by hand (Prometheus' rules). */
import { describe, expect, it } from '@jest/globals';
import { rate, windowQuantile } from './stats-math.js';

const hist = (count: number, cumulative: number[], bounds = [0.001, 0.01, 0.1]) => ({
  count,
  buckets: bounds.map((le, i) => ({ le, count: cumulative[i] })),
});

describe('rate', () => {
  it('is the increase per second between two reads', () => {
    expect(rate(100, 150, 2)).toBe(25);
    expect(rate(100, 100, 1)).toBe(0);
  });

  it('takes a counter that went down as reset: its new value is the increase', () => {
    expect(rate(500, 30, 1)).toBe(30);
    expect(rate(undefined, 8, 2)).toBe(4);
  });

  it('is 0 when no time passed', () => {
    expect(rate(1, 5, 0)).toBe(0);
  });
});

describe('windowQuantile', () => {
  it('interpolates within the bucket holding the rank, over the observations between the reads only', () => {
    // Before: 10 observations, all ≤ 1 ms. Between the reads: 10 more, 2 ≤ 1 ms, 8 in (1 ms, 10 ms].
    const before = hist(10, [10, 10, 10]);
    const after = hist(20, [12, 20, 20]);
    // p50: rank 5 of 10; 2 below 1 ms, so 3 of the 8 in (0.001, 0.01] → 0.001 + 0.009 × 3/8.
    expect(windowQuantile(0.5, before, after)).toBeCloseTo(0.001 + 0.009 * (3 / 8), 12);
    // p10: rank 1, within the first bucket, from 0: 0.001 × 1/2.
    expect(windowQuantile(0.1, before, after)).toBeCloseTo(0.0005, 12);
  });

  it('answers the last finite bound for a rank in +Inf, and null when nothing was observed', () => {
    expect(windowQuantile(0.99, hist(0, [0, 0, 0]), hist(10, [0, 0, 5]))).toBe(0.1);
    expect(windowQuantile(0.5, hist(7, [1, 2, 7]), hist(7, [1, 2, 7]))).toBeNull();
  });

  it('reads from zero without a previous read or after a reset', () => {
    const after = hist(4, [0, 4, 4]);
    expect(windowQuantile(0.5, undefined, after)).toBeCloseTo(0.0055, 12);
    expect(windowQuantile(0.5, hist(100, [50, 100, 100]), after)).toBeCloseTo(0.0055, 12);
  });
});
