// Turns a run into figures: the stdout table, results JSON, a Markdown report and the scale-curve SVG.
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './gateway.mjs';
import { peerMarkdown, peerRows, printPeers } from './report-peers.mjs';
import { scaleRows, scaleSvg } from './report-scale.mjs';
import { fmtNum } from './util.mjs';

const ms = (v) => (v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : fmtNum(v));
const n0 = (v) => fmtNum(v);
const ratio = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(2));

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
          target('≤', 1.5, v.ratios.p99),
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
        add(`${tag}: POST→receipt p50 / p99 ms`, `${ms(x.p50)} / ${ms(x.p99)}`, '');
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
          target('≥', 0.5, r.ratios[tr]),
        );
        add(`${tr}: ms until live`, n0(x.toLiveMs), '');
        add(
          `${tr}: CPU cores during catch-up, gateway / client process`,
          `${ratio(x.serverCores)} / ${ratio(x.clientCores)}`,
          '',
        );
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
      );
      add('per client reconnect→live p50 / p99 ms', `${ms(h.p50)} / ${ms(h.p99)}`, '');
      if (h.cpuS) {
        add(
          'CPU s until every client was live: gateway / nats-server / client processes',
          `${ms(h.cpuS.gateway)} / ${ms(h.cpuS.nats)} / ${ms(h.cpuS.clients)}`,
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
  for (const c of r.checks ?? []) {
    if (!c.ok) add(`check failed [${c.who}]`, c.what, '', '', { text: '', met: c.warnOnly ? null : false });
  }
  return rows;
}

function pad(s, n) {
  s = String(s);
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function printTable(run) {
  const rows = run.results.flatMap(rowsOf);
  const cols = ['scenario', 'store', 'figure', 'hookstream', 'bare', 'ratio', 'target', 'met'];
  const cells = rows.map((r) =>
    cols.map((c) => (c === 'met' ? (r.met === null ? '' : r.met ? 'yes' : 'NO') : String(r[c] ?? ''))),
  );
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals) => vals.map((v, i) => pad(v, widths[i])).join('  ');
  process.stdout.write(`\n${line(cols)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const row of cells) process.stdout.write(`${line(row)}\n`);
  printPeers(run);
}

function machineLine(m) {
  const load = m.loadAtStart
    ? ` (load average 1/5/15 min: ${m.loadAtStart.join(' / ')} at the start, ${m.loadAtEnd?.join(' / ')} at the end)`
    : '';
  return `${m.cpuModel}, ${m.cores} cores, ${m.ramGiB} GiB RAM, Linux ${m.kernel}, Node ${m.node}, nats-server ${m.natsServer}${load}`;
}

function markdown(run, svgName) {
  const rows = run.results.flatMap(rowsOf);
  const out = [];
  out.push(`# Hookstream benchmark — ${run.mode} run, ${run.when}`);
  out.push('');
  out.push(
    `Machine: ${machineLine(run.machine)}. Everything (gateway, nats-server, load generators, bare references) ran on this one machine; load generators in separate processes. Stores: ${run.stores.join(', ')}. Code: commit ${run.code?.commit ?? 'unknown'}${run.code?.srcUncommitted ? ' with uncommitted changes in src/' : ''}, build \`${run.gatewayBuild ?? 'dist'}\`. Correctness: **${run.correctness}**. Duration: ${run.seconds.toFixed(0)} s.${run.profiled ? ' **Hookstream ran under --cpu-prof: its figures are slower than usual.**' : ''}`,
  );
  out.push('');
  out.push(
    '"bare" is the reference one could write without Hookstream, measured in the same run (see `bench/refs/`); the ratio is Hookstream ÷ bare, and is the figure that holds on a noisy machine.',
  );
  out.push('');
  out.push('| scenario | store | figure | Hookstream | bare | ratio | target | met |');
  out.push('|---|---|---|---:|---:|---:|---|---|');
  for (const r of rows) {
    const met = r.met === null ? '' : r.met ? 'yes' : '**no**';
    out.push(
      `| ${r.scenario} | ${r.store} | ${r.figure} | ${r.hookstream} | ${r.bare} | ${r.ratio} | ${r.target} | ${met} |`,
    );
  }
  out.push('');
  out.push(...peerMarkdown(run));
  if (svgName) {
    out.push('## Scale curve');
    out.push('');
    out.push(`![scale curve](${svgName})`);
    out.push('');
  }
  out.push('## How the figures are measured');
  out.push('');
  out.push(
    [
      '- Every phase starts a fresh nats-server (JetStream) or a fresh temp `DATA_DIR` (embedded) and a fresh server: Hookstream as users run it (`node dist/main.js` with a config file) or a bare reference (`bench/refs/`). Load generators and clients are separate processes (at most 2,500 clients each).',
      '- **ingest**: closed loop, N keep-alive connections, each POSTing a new Standard-Webhooks-signed 512-byte webhook as soon as the last was answered. Hookstream and the bare reference (node:http + node:crypto verify + `js.publish` with msgID, or a group-committed SQLite insert) run side by side and take the load in alternating rounds. Checked: every 202 has its own seq, no new id answered as a duplicate.',
      "- **ingest-with-schema**: the ingest load with 1 KB webhooks against two Hookstream gateways in alternating rounds, one enforcing a JSON Schema on the webhooks' subject and one with none (its figures stand in the bare column). Checked: every webhook validated (none refused).",
      '- **fan-out**: N clients (socket.io-client over websocket, or SSE over node:http) subscribed to `events.bench.>`; events published at a fixed rate (JetStream: `js.publish` into the stream, which both servers tap; embedded: `POST /v1/events` to the server). Latency = client receipt − publish time carried in the event. delivered/s = deliveries ÷ (last receipt − first publish). The bare reference taps the stream with one ordered consumer (or appends+broadcasts for embedded) and sends each event as ONE Socket.IO room broadcast / one shared SSE frame. Checked per client: every seq once, in order, through the last stored one.',
      '- **e2e**: signed webhooks POSTed at a fixed rate to Hookstream; with `topics` T the webhooks carry T event types and each client watches one type (each webhook reaches N/T clients); "broadcast" sends every webhook to every client. Checked per client against the seqs stored per topic.',
      '- **catch-up**: a client takes a cursor, N events are stored, the client resumes from the cursor while 100 events/s keep flowing; events/s until it has the backlog, ms until it gets an event published after its resubscribe. Reference: the same range read bare (one ordered consumer / paged SQLite reads, no parsing or sending).',
      '- **storm**: N Socket.IO clients (spread over T topics) while events flow; all drop at once and resume with their cursors (a failed reconnect is retried with the SDK\'s backoff, from 250 ms). Live again = received an event published after the resubscribe was acked (so the granularity is one event interval of its topic). CPU: seconds used by the gateway, nats-server and the client processes until every client was live. Checked: no gap, duplicate or loss across the storm.',
      "- **scale**: memory per idle connection per transport (clients added in steps, nothing published, settled RSS; KiB per idle connection = least-squares slope of RSS over clients), then the scale curve: half Socket.IO, half SSE clients added in steps (its own client processes, each from its own loopback address, with the open-file limit raised where allowed), each watching one of T topics and the broadcast subject. At each step: settled RSS with the clients idle (per connection: over the server's RSS before any client), a broadcast burst every client gets, then T events/s spread over the topics; each measured for delivered/s, latency and server CPU, and checked per client.",
      '- Server CPU comes from /proc/<pid>/stat over the measured window. Latency percentiles come from log-bucket histograms (±2.5%).',
    ].join('\n'),
  );
  out.push('');
  out.push('## Correctness checks');
  out.push('');
  for (const r of run.results) {
    for (const c of r.checks ?? []) {
      out.push(
        `- ${c.ok ? 'ok' : c.warnOnly ? 'warning' : '**FAILED**'} — ${r.scenario} · ${r.store} · ${c.who}: ${c.what} (${c.detail})`,
      );
    }
  }
  out.push('');
  const notes = run.results.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.scenario} · ${r.store}: ${n}`));
  if (notes.length) {
    out.push('## Notes');
    out.push('');
    out.push(...notes);
    out.push('');
  }
  const profiles = run.results.filter((r) => r.profile);
  if (profiles.length) {
    out.push('## CPU profiles (Hookstream, top self time)');
    for (const r of profiles) {
      out.push('');
      out.push(`### ${r.scenario} · ${r.store} — ${r.profile.busyMs} ms busy, ${r.profile.idleMs} ms idle`);
      out.push('');
      out.push('| self ms | share | function | where |');
      out.push('|---:|---:|---|---|');
      for (const f of r.profile.functions) out.push(`| ${f.ms} | ${f.share}% | \`${f.name}\` | ${f.loc} |`);
      out.push('');
      out.push(`By package: ${r.profile.packages.map((p) => `${p.pkg} ${p.share}%`).join(', ')}`);
    }
    out.push('');
  }
  out.push('## Parameters');
  out.push('');
  out.push('```json');
  out.push(JSON.stringify(run.params, null, 2));
  out.push('```');
  out.push('');
  return out.join('\n');
}

/** Writes <base>.json, <base>.md and (with a scale result) the SVG; returns the paths written. */
export function writeReports(run, dir, base) {
  const written = [];
  const scale = run.results.find((r) => r.scenario === 'scale' && r.curve);
  let svgName;
  if (scale) {
    svgName = base === 'latest' ? 'scale-curve.svg' : `${base}-scale-curve.svg`;
    writeFileSync(join(dir, svgName), scaleSvg(scale));
    written.push(join(dir, svgName));
  }
  writeFileSync(join(dir, `${base}.json`), `${JSON.stringify(run, replacer, 2)}\n`);
  written.push(join(dir, `${base}.json`));
  writeFileSync(join(dir, `${base}.md`), markdown(run, svgName));
  written.push(join(dir, `${base}.md`));
  return written.map((p) => relative(ROOT, p));
}

function replacer(key, value) {
  if (key === 'hist' || key === 'timings' || key === 'postHist') return undefined;
  if (typeof value === 'number' && !Number.isInteger(value)) return Math.round(value * 1000) / 1000;
  return value;
}
