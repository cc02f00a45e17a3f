// Saturation: the highest publish rate a server delivers to every connected client with publish→receipt p99
// under a bound. At a fixed offered load two servers that both keep up show the same delivered/s (1.0×);
// stepping the rate up until the tail breaks shows how much headroom each has.
// The rate is stepped up on the clients already open; each step publishes for `seconds` and drains before the
// next, and the first step that misses (p99 at or over the bound, or anything lost) ends the search. A step
// whose only miss is the tail is measured once more before it counts (one stall of a shared machine should
// not end the search), never a step that lost something. The clients' loss counters run for their whole
// life, so each step is judged on what it added to them.
import { deliveryCheck, measureDelivery } from './common.mjs';

/**
 * `rates`: the steps in events/s, rising; `p99Ms`: the bound; `seconds`: publishing time per step; `since`: the
 * last measurement on these clients (its loss counters are the baseline).
 * Returns {p99Ms, steps: [{rate, attempt, deliveredPerS, p50, p99, ok}], best: the last step that passed or null,
 * aboveTop: every step passed, checks: the delivery check of every step}.
 */
export async function findSaturation(ctx, t, pub, { rates, p99Ms, seconds, drainTimeoutMs, label, since }) {
  const out = { p99Ms, steps: [], best: null, checks: [] };
  let prev = since ?? { lost: 0, dups: 0, gaps: 0, incomplete: 0 };
  const measure = async (rate, attempt) => {
    const total = await measureDelivery(ctx, t, ctx.fleet, pub, {
      rate,
      events: Math.max(10, Math.round(rate * seconds)),
      drainTimeoutMs,
      label: `${label} · saturation ${rate}/s${attempt > 1 ? ' (again)' : ''}`,
    });
    const r = { ...total };
    for (const k of ['lost', 'dups', 'gaps', 'incomplete']) r[k] = Math.max(0, total[k] - prev[k]);
    // A client left behind by the last measurement (already counted as lost there) shows its hole as one gap
    // when deliveries reach it again: not this step's.
    r.gaps = Math.max(0, r.gaps - prev.incomplete);
    prev = total;
    const check = deliveryCheck(t.kind, r);
    check.at = `saturation step ${rate} events/s`;
    check.what = `${check.at}: ${check.what}`;
    out.checks.push(check);
    const step = {
      rate,
      attempt,
      clients: r.clients,
      deliveredPerS: r.deliveredPerS,
      p50: r.p50,
      p99: r.p99,
      lost: r.lost,
      serverCpuMsPer1kDeliveries: r.serverCpuMsPer1kDeliveries,
      delivered: check.ok,
      ok: check.ok && r.drainedInTime && r.p99 !== null && r.p99 < p99Ms,
    };
    out.steps.push(step);
    return step;
  };
  for (const rate of rates) {
    let step = await measure(rate, 1);
    if (!step.ok && step.delivered) step = await measure(rate, 2);
    if (!step.ok) break;
    out.best = step;
  }
  // Every step passed: the server's limit is above the last one (reported as "≥").
  out.aboveTop = out.best?.rate === rates.at(-1);
  return out;
}
