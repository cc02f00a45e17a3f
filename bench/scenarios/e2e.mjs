// Scenario 4 — end to end: Standard-Webhooks-signed webhooks POSTed at a fixed rate to Hookstream while N
// Socket.IO clients subscribe: POST → receipt latency in the clients (the publish time travels in the body).
// Variants: `topics` T > 0 spreads webhooks over T event types and each client watches one (each webhook
// reaches N/T clients, as tenants' dashboards would); T = 0 sends every webhook to every client.
// No bare reference (the ingest and fan-out ratios cover the two halves); absolute figures only.
import { deliveryCheck, measureDelivery, openCheck, publisherFor, SUBJECTS } from './common.mjs';
import { withTarget } from '../lib/phase.mjs';
import { sleep } from '../lib/util.mjs';

export async function e2e(ctx, store) {
  const out = { scenario: 'e2e', store, params: ctx.P.e2e, variants: [], checks: [], notes: [] };
  for (const P of ctx.P.e2e) {
    const shape = P.topics ? `${P.topics} topics` : 'broadcast';
    const label = `e2e · ${store} · ${P.rate}/s × ${P.clients} (${shape})`;
    const r = await withTarget(
      { store, kind: 'hookstream', profile: ctx.profileName(`e2e-${P.rate}`, store, 'hookstream') },
      async (t) => {
        const pub = await publisherFor(t);
        try {
          ctx.progress(`${label}: connecting ${P.clients} clients`);
          const o = await ctx.fleet.open(P.clients, {
            url: t.url,
            transport: 'socketio',
            subjects: SUBJECTS,
            topics: P.topics ?? 0,
          });
          out.checks.push(openCheck(`hookstream`, P.clients, o.opened, o.errors));
          await sleep(ctx.P.settleMs);
          return await measureDelivery(ctx, t, ctx.fleet, pub, {
            mode: 'webhook',
            rate: P.rate,
            events: P.events,
            topics: P.topics ?? 0,
            drainTimeoutMs: P.drainTimeoutMs,
            label,
          });
        } finally {
          await pub.stop();
          await ctx.fleet.closeAll();
        }
      },
    );
    out.variants.push({ params: P, hookstream: r });
    const check = deliveryCheck('hookstream', r);
    check.what = `${P.rate} webhooks/s × ${P.clients} clients (${shape}): ${check.what}`;
    out.checks.push(check);
    if (r.publishFailed)
      out.notes.push(
        `${P.rate}/s: ${r.publishFailed} webhook POSTs were not 2xx (${JSON.stringify(r.publishStatuses)})`,
      );
  }
  return out;
}
