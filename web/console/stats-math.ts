/**
 * What the Overview draws, derived from two reads of `GET /v1/stats` the way Prometheus derives it from two
 * scrapes: a counter's rate is its increase over the time between the reads (a counter that went down was reset
 * by a restart: its new value is the increase), and a quantile of the lag histogram is interpolated linearly
 * within the bucket holding it, over the observations made between the reads (as `histogram_quantile` over
 * `rate(…_bucket)`). Pure functions, no DOM.
 */
import type { HistogramBucket } from '@hookstream/client';

/** Per second, between two totals read `seconds` apart. */
export function rate(before: number | undefined, after: number, seconds: number): number {
  if (!(seconds > 0)) return 0;
  const increase = before === undefined || after < before ? after : after - before;
  return increase / seconds;
}

/**
 * The `q` quantile (0…1) of the observations between two reads of one histogram, in the histogram's unit; null
 * when nothing was observed in between. Buckets are cumulative (`le` ascending); `count` is the `+Inf` bucket.
 * A quantile beyond the last finite bucket is that bucket's bound (as Prometheus answers).
 */
export function windowQuantile(
  q: number,
  before: { count: number; buckets: HistogramBucket[] } | undefined,
  after: { count: number; buckets: HistogramBucket[] },
): number | null {
  const reset = before === undefined || after.count < before.count;
  const prior = (i: number) => (reset ? 0 : (before.buckets[i]?.count ?? 0));
  const total = after.count - (reset ? 0 : before.count);
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < after.buckets.length; i++) {
    const { le } = after.buckets[i];
    const upto = after.buckets[i].count - prior(i);
    if (upto >= rank) {
      const inBucket = upto - lowerCount;
      if (inBucket <= 0) return le;
      return lowerBound + (le - lowerBound) * ((rank - lowerCount) / inBucket);
    }
    lowerBound = le;
    lowerCount = upto;
  }
  return after.buckets.length ? after.buckets[after.buckets.length - 1].le : null;
}
