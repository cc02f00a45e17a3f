// Turns a run into figures: the stdout table, results JSON, a Markdown report and the scale-curve SVG. The rows
// of the main table (one scenario's figures against its bare reference and target) come from report-rows.mjs.
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './gateway.mjs';
import { isPeerCheck, peerMarkdown, printPeers } from './report-peers.mjs';
import { scaleSvg } from './report-scale.mjs';
import { rowsOf } from './report-rows.mjs';

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
      '- **catch-up**: a client takes a cursor, N events are stored, the client resumes from the cursor while 100 events/s keep flowing; events/s until it has the backlog, ms until it gets an event published after its resubscribe. Reference: the same range read bare (one ordered consumer / paged SQLite reads, no parsing or sending). Client ceiling (no target): the same client, in fresh client processes (not JIT-warm, like those Hookstream is measured with), resuming from the same cursor against a server that only writes the frames Hookstream would send, pre-built in memory, with no live load; it shows how fast the client process can take them on this machine. CPU µs per event = CPU seconds of the process from the open until the client caught up and was live, over the events it received.',
      "- **storm**: N Socket.IO clients (spread over T topics) while events flow; all drop at once and resume with their cursors (a failed reconnect is retried with the SDK's backoff, from 250 ms). Live again = received an event published after the resubscribe was acked (so the granularity is one event interval of its topic). CPU: seconds used by the gateway, nats-server and the client processes until every client was live. Checked: no gap, duplicate or loss across the storm.",
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
        `- ${c.ok ? 'ok' : isPeerCheck(c) ? 'not so for the peer (no target)' : c.warnOnly ? 'warning' : '**FAILED**'} — ${r.scenario} · ${r.store} · ${c.who}: ${c.what} (${c.detail})`,
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
