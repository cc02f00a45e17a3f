// The rows of the benchmark's main table, shared by the stdout table and the Markdown report: for each scenario
// its figures, Hookstream against the bare reference, the ratio and the target it must meet (met: yes / no /
// not measurable), plus a row for every failed correctness check (the peer's, Pushpin's, are stated as facts about
// it by report-peers.mjs).
import { isPeerCheck, peerRows } from './report-peers.mjs';
import { scaleRows } from './report-scale.mjs';
import { fmtNum } from './util.mjs';

const ms = (v) => (v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : fmtNum(v));
const n0 = (v) => fmtNum(v);
const ratio = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(2));
const kib = (b) => (b === null || b === undefined || !Number.isFinite(b) ? '–' : (b / 1024).toFixed(1));

/** A target: `ratio >= x` or `ratio <= x` or `value == 0`; met is true/false, or null when not measurable. */
function target(kind, limit, value) {
  if (value === null || value === undefined || !Number.isFinite(value))
    return { text: kind === 'zero' ? '= 0' : `${kind} ${limit}`, met: null };
  if (kind === '≥') return { text: `≥ ${limit}`, met: value >= limit };
  if (kind === '≤') return { text: `≤ ${limit}`, met: value <= limit };
  return { text: '= 0', met: value === 0 };
}

/** Rows {scenario, store, figure, hookstream, bare, ratio, target, met} for one result. */
export function rowsOf(r) {
  const rows = [];
  const add = (figure, hs, bare, rat, tgt) =>
    rows.push({
      scenario: r.scenario,
      store: r.store,
      figure,
      hookstream: hs,
      bare: bare ?? '',
      ratio: rat ?? '',
      target: tgt?.text ?? '',
      met: tgt?.met ?? null,
    });
  if (r.error) {
    add('error', String(r.error).split('\n')[0].slice(0, 160), '', '', { text: '', met: false });
    return rows;
  }
  const h = r.hookstream;
  const b = r.bare;
  switch (r.scenario) {
    case 'ingest':
      add('requests/s', n0(h.rps), n0(b.rps), ratio(r.ratios.rps), target('≥', 0.75, r.ratios.rps));
      add('latency p50 / p99 ms', `${ms(h.p50)} / ${ms(h.p99)}`, `${ms(b.p50)} / ${ms(b.p99)}`, ratio(r.ratios.p99));
      add('non-2xx', n0(h.non2xx), n0(b.non2xx));
      add(
        'server CPU µs per request',
        n0(h.serverCpuUsPerRequest),
        n0(b.serverCpuUsPerRequest),
        ratio(r.ratios.cpuPerRequest),
      );
      add('server CPU (cores)', ratio(h.serverCores), ratio(b.serverCores));
      break;
    case 'ingest-with-schema':
      // bare column = the same Hookstream without a schema: the ratio is the cost of enforcing one.
      add(
        '1 KB webhooks/s, schema enforced (vs no schema)',
        n0(h.rps),
        n0(b.rps),
        ratio(r.ratios.rps),
        target('≥', 0.9, r.ratios.rps),
      );
      add(
        'latency p50 / p99 ms (vs no schema)',
        `${ms(h.p50)} / ${ms(h.p99)}`,
        `${ms(b.p50)} / ${ms(b.p99)}`,
        ratio(r.ratios.p99),
      );
      add(
        'server CPU µs per request (vs no schema)',
        n0(h.serverCpuUsPerRequest),
        n0(b.serverCpuUsPerRequest),
        ratio(r.ratios.cpuPerRequest),
      );
      break;
    case 'fanout-socketio':
    case 'fanout-sse':
      for (const v of r.variants) {
        const x = v.hookstream;
        const y = v.bare;
        if (!x || !y) continue;
        const tag = `${n0(v.params.rate)}/s × ${n0(x.clients)}`;
        add(
          `${tag}: delivered/s (offered ${n0(x.offeredEventsPerS * x.clients)})`,
          n0(x.deliveredPerS),
          n0(y.deliveredPerS),
          ratio(v.ratios.deliveredPerS),
          target('≥', 0.8, v.ratios.deliveredPerS),
        );
        add(
          `${tag}: publish→receipt p50 / p99 ms`,
          `${ms(x.p50)} / ${ms(x.p99)}`,
          `${ms(y.p50)} / ${ms(y.p99)}`,
          ratio(v.ratios.p99),
          // Issue #15: when the box is not saturated (20 events/s) the tail must stay within 1.2× the bare one.
          target('≤', x.offeredEventsPerS <= 20 ? 1.2 : 1.5, v.ratios.p99),
        );
        add(
          `${tag}: server CPU ms per 1k deliveries`,
          ms(x.serverCpuMsPer1kDeliveries),
          ms(y.serverCpuMsPer1kDeliveries),
          ratio(v.ratios.cpuPerDelivery),
        );
        add(
          `${tag}: lost / duplicate / gaps`,
          `${x.lost} / ${x.dups} / ${x.gaps}`,
          `${y.lost} / ${y.dups} / ${y.gaps}`,
          '',
          target('zero', 0, x.lost + x.dups + x.gaps),
        );
      }
      rows.push(...peerRows(r));
      break;
    case 'e2e':
      for (const v of r.variants) {
        const x = v.hookstream;
        const shape = v.params.topics ? `${n0(v.params.topics)} topics` : 'broadcast';
        const tag = `${n0(v.params.rate)} webhooks/s × ${n0(v.params.clients)} (${shape})`;
        add(
          `${tag}: delivered/s (offered ${n0((v.params.rate * v.params.clients) / (v.params.topics || 1))})`,
          n0(x.deliveredPerS),
          '',
        );
        add(
          `${tag}: POST→receipt p50 / p99 ms`,
          `${ms(x.p50)} / ${ms(x.p99)}`,
          '',
          '',
          v.params.rate >= 500 ? { text: 'p99 < 50', met: x.p99 < 50 } : undefined,
        );
        add(`${tag}: POST answered p50 / p99 ms`, `${ms(x.postLatency?.p50)} / ${ms(x.postLatency?.p99)}`, '');
        add(
          `${tag}: lost / duplicate / gaps`,
          `${x.lost} / ${x.dups} / ${x.gaps}`,
          '',
          '',
          target('zero', 0, x.lost + x.dups + x.gaps),
        );
      }
      break;
    case 'catchup':
      for (const tr of ['socketio', 'sse']) {
        const x = h[tr];
        if (!x) continue;
        add(
          `${tr}: events/s resuming ${n0(x.backlog)} back`,
          n0(x.rate),
          n0(b.rate),
          ratio(r.ratios[tr]),
          target('≥', r.store === 'embedded' ? 0.6 : 0.8, r.ratios[tr]),
        );
        add(`${tr}: ms until live`, n0(x.toLiveMs), '');
        add(
          `${tr}: CPU cores during catch-up, gateway / client process`,
          `${ratio(x.serverCores)} / ${ratio(x.clientCores)}`,
          '',
        );
        if (x.serverUsPerEvent !== undefined) {
          add(
            `${tr}: CPU µs per event, gateway / client process`,
            `${ratio(x.serverUsPerEvent)} / ${ratio(x.clientUsPerEvent)}`,
            '',
          );
        }
        const top = r.ceiling?.[tr];
        if (top) {
          // No target: how fast the same client takes the same frames when the server costs almost nothing.
          add(
            `${tr}: client ceiling: a server writing pre-built frames, events/s (Hookstream reached ${ratio(x.rate / top.rate)} of it)`,
            n0(top.rate),
            n0(b.rate),
            ratio(r.ceilingRatios?.[tr]),
          );
          add(
            `${tr}: client ceiling: CPU cores, writer / client process; client CPU µs per event`,
            `${ratio(top.serverCores)} / ${ratio(top.clientCores)}; ${ratio(top.clientUsPerEvent)}`,
            '',
          );
        }
        add(
          `${tr}: lost / duplicate / gaps`,
          `${x.lost} / ${x.dups} / ${x.gaps}`,
          '',
          '',
          target('zero', 0, x.lost + x.dups + x.gaps),
        );
      }
      break;
    case 'storm':
      add(
        `${n0(h.clients)} clients${h.topics ? ` on ${h.topics} topics` : ''}: s until every client is live`,
        ms(h.allLiveS),
        '',
        '',
        h.clients >= 10_000 ? target('≤', 10, h.allLiveS) : undefined,
      );
      add('per client reconnect→live p50 / p99 ms', `${ms(h.p50)} / ${ms(h.p99)}`, '');
      if (h.cpuS) {
        add(
          'CPU s until every client was live: gateway / nats-server / client processes',
          `${ms(h.cpuS.gateway)} / ${ms(h.cpuS.nats)} / ${ms(h.cpuS.clients)}`,
          '',
        );
      }
      if (h.listenQueue && h.listenQueue.overflows !== null) {
        add(
          `connects refused by a full accept queue (kernel ListenOverflows; somaxconn ${h.listenQueue.somaxconn ?? '?'})`,
          n0(h.listenQueue.overflows),
          '',
        );
      }
      add(
        'gaps / duplicates / lost',
        `${h.gaps} / ${h.dups} / ${h.lost}`,
        '',
        '',
        target('zero', 0, h.gaps + h.dups + h.lost),
      );
      break;
    case 'scale':
      scaleRows(r, add, target);
      break;
    case 'outbound':
      // Events spread over the endpoints: the offered deliveries/s is the event rate at every level.
      r.hookstream.forEach((x, i) => {
        const y = r.bare[i];
        const tag = `${n0(x.endpoints)} endpoint${x.endpoints === 1 ? '' : 's'} (JetStream only)`;
        add(
          `${tag}: deliveries/s (offered ${n0(r.params.rate)})`,
          n0(x.deliveredPerS),
          n0(y?.deliveredPerS),
          ratio(r.ratios[i]),
          target('≥', 0.8, r.ratios[i]),
        );
        add(`${tag}: stored→received p50 / p99 ms`, `${ms(x.p50)} / ${ms(x.p99)}`, `${ms(y?.p50)} / ${ms(y?.p99)}`);
        add(
          `${tag}: CPU cores, server / nats-server`,
          `${ratio(x.serverCores)} / ${ratio(x.natsCores)}`,
          `${ratio(y?.serverCores)} / ${ratio(y?.natsCores)}`,
        );
        add(
          `${tag}: lost / duplicate`,
          `${x.lost} / ${x.dups}`,
          `${y?.lost} / ${y?.dups}`,
          '',
          target('zero', 0, x.lost),
        );
        if (x.down) {
          const d = x.down;
          const e = y?.down;
          const down = `${tag}: receiver down ${ms(d.downS)} s then up`;
          add(`${down}: s until drained`, ms(d.drainS), ms(e?.drainS), ratio(d.drainS / e?.drainS));
          add(
            `${down}: lost / duplicate`,
            `${d.lost} / ${d.dups}`,
            `${e?.lost} / ${e?.dups}`,
            '',
            target('zero', 0, d.lost),
          );
        }
      });
      break;
    case 'outbound-endpoints': {
      // Hookstream only: what one registered endpoint costs (slopes over the steps), and the deliveries at the top.
      const e = r.perEndpoint;
      const top = r.steps.at(-1);
      const tag = `${n0(top?.endpoints)} endpoints`;
      add(`${tag}: create through the API, ms per endpoint`, ms(e.createMs));
      add(`${tag}: gateway RSS / heap per endpoint, KiB`, `${kib(e.gatewayRss)} / ${kib(e.gatewayHeap)}`);
      if (r.store === 'jetstream') add(`${tag}: nats-server RSS per endpoint, KiB`, kib(e.natsRss));
      add(
        `${tag}: idle CPU cores, gateway / nats-server`,
        `${ratio(top?.gatewayIdleCores)} / ${r.store === 'jetstream' ? ratio(top?.natsIdleCores) : '–'}`,
      );
      add(`${tag}: one /metrics scrape, ms`, ms(top?.scrapeMs));
      const d = r.delivery;
      if (d) {
        add(`${tag}: ${n0(d.published)} events, s until all delivered`, ms(d.drainS));
        add(`${tag}: lost / duplicate`, `${d.lost} / ${d.dups}`, '', '', target('zero', 0, d.lost));
      }
      break;
    }
    default:
      break;
  }
  // The peer's checks (Pushpin) are stated by peerRows as facts about it, not as failed checks.
  for (const c of r.checks ?? []) {
    if (!c.ok && !isPeerCheck(c))
      add(`check failed [${c.who}]`, c.what, '', '', { text: '', met: c.warnOnly ? null : false });
  }
  return rows;
}
