// The fan-out figures beside a real peer (Pushpin, SSE) and the saturation search: rows for the main table,
// and a three-way table Hookstream / bare / Pushpin for the Markdown report and stdout.
import { fmtNum } from './util.mjs';

const NOT_RUN = new Set(['not installed']);
const ms = (v) => (v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : fmtNum(v));
const ratio = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(2));
const kb = (b) => (b === null || b === undefined || !Number.isFinite(b) ? '–' : (b / 1024).toFixed(1));
const div = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : null);
/** Per-connection RSS growth is noise below a few hundred connections (a smoke run): no verdict on it. */
const MIN_CLIENTS_FOR_MEMORY = 500;

/**
 * RSS growth says something per connection only with enough connections, and only when it grew: a process
 * with heap to spare (or one that collected garbage meanwhile) can show none, or even shrink.
 */
function memoryMeasurable(m) {
  return (m?.clients ?? 0) >= MIN_CLIENTS_FOR_MEMORY && m.bytesPerConnection > 0;
}

/**
 * A check of the peer (Pushpin): what it did, measured by the same client as Hookstream, but not a check of
 * Hookstream. The report states it as a fact about the peer, never in the met column or the correctness verdict.
 */
export function isPeerCheck(c) {
  return c.peer === true || c.who === 'pushpin';
}

/**
 * "Pushpin lost N of M deliveries" (and its duplicates, gaps, clients left short), from a measurement or a
 * check's counts; null when it delivered everything.
 */
export function peerLoss(m, { brief = false } = {}) {
  if (!m) return null;
  const expected = m.expected ?? m.expectedDeliveries;
  const parts = [];
  if (m.lost) parts.push(`lost ${fmtNum(m.lost)} of ${fmtNum(expected)} deliveries`);
  if (m.dups) parts.push(`delivered ${fmtNum(m.dups)} twice`);
  const more = [];
  if (m.gaps) more.push(`${fmtNum(m.gaps)} gaps`);
  if (m.incomplete) more.push(`${fmtNum(m.incomplete)} clients missing events at the end`);
  if (!parts.length && !more.length) return null;
  if (!parts.length) parts.push('lost no delivery');
  return `Pushpin ${parts.join(' and ')}${more.length && !brief ? ` (${more.join(', ')})` : ''}`;
}

function pushpinState(r) {
  if (!r.pushpin) return null; // not an SSE result, or a run from before the peer existed
  if (NOT_RUN.has(r.pushpin) || r.pushpin.startsWith('error')) return r.pushpin;
  return 'measured';
}

/**
 * Hookstream against Pushpin for one rate: the four figures, each {hs, pp, ratio, ahead}. Delivered/s counts
 * as ahead when within 1% (both delivered what was offered), the others when strictly lower.
 */
export function versusPushpin(r, v) {
  const x = v.hookstream;
  const y = v.pushpin;
  if (!x || !y) return null;
  const mem = r.memory ?? {};
  const hsKb = mem.hookstream?.bytesPerConnection;
  const ppKb = mem.pushpin?.bytesPerConnection;
  const memOk = memoryMeasurable(mem.hookstream) && memoryMeasurable(mem.pushpin);
  const figures = [
    {
      name: 'delivered/s',
      ratio: div(x.deliveredPerS, y.deliveredPerS),
      ahead: x.deliveredPerS >= 0.99 * y.deliveredPerS,
    },
    { name: 'p99', ratio: div(x.p99, y.p99), ahead: x.p99 < y.p99 },
    {
      name: 'CPU µs per delivery',
      ratio: div(x.serverCpuMsPer1kDeliveries, y.serverCpuMsPer1kDeliveries),
      ahead: x.serverCpuMsPer1kDeliveries < y.serverCpuMsPer1kDeliveries,
    },
    { name: 'KB per connection', ratio: div(hsKb, ppKb), ahead: memOk ? hsKb < ppKb : null },
  ];
  const behind = figures.filter((f) => f.ahead === false).map((f) => f.name);
  const unknown = figures.filter((f) => f.ahead === null).map((f) => f.name);
  return { figures, behind, unknown, met: behind.length ? false : unknown.length ? null : true };
}

function saturationText(s) {
  if (!s) return '';
  if (!s.best) return `below ${fmtNum(s.steps[0]?.rate)}/s`;
  const head = `${s.aboveTop ? '≥ ' : ''}${fmtNum(s.best.rate)}/s`;
  return `${head} (${fmtNum(s.best.deliveredPerS)} deliveries/s, p99 ${ms(s.best.p99)} ms)`;
}

/** Rows for the main table (same shape as report-rows.mjs's): the Pushpin verdict per rate and the saturation row. */
export function peerRows(r) {
  const rows = [];
  const add = (figure, hookstream, bare, rat, target, met) =>
    rows.push({ scenario: r.scenario, store: r.store, figure, hookstream, bare, ratio: rat, target, met });
  const mem = r.memory ?? {};
  if (mem.hookstream && mem.bare) {
    const ok = memoryMeasurable(mem.hookstream) && memoryMeasurable(mem.bare);
    add(
      `KB per idle connection (RSS growth over ${fmtNum(mem.hookstream.clients)} clients)`,
      kb(mem.hookstream.bytesPerConnection),
      kb(mem.bare.bytesPerConnection),
      ok ? ratio(div(mem.hookstream.bytesPerConnection, mem.bare.bytesPerConnection)) : '–',
      '',
      null,
    );
  }
  const state = pushpinState(r);
  if (state) {
    for (const v of r.variants ?? []) {
      const tag = `${fmtNum(v.params.rate)}/s × ${fmtNum(v.hookstream?.clients)}`;
      const cmp = state === 'measured' ? versusPushpin(r, v) : null;
      const verdict = cmp
        ? cmp.behind.length
          ? `behind on ${cmp.behind.join(', ')}`
          : `ahead on ${4 - cmp.unknown.length} of 4${cmp.unknown.length ? ` (${cmp.unknown.join(', ')}: not measurable)` : ''}`
        : state;
      // Pushpin's own loss at this rate is part of the comparison's context, said in words (a delivery it never
      // made already counts against its delivered/s).
      const loss = cmp ? peerLoss(v.pushpin, { brief: true }) : null;
      const hs = loss ? `${verdict}; ${loss} at this rate` : verdict;
      add(
        `${tag}: vs Pushpin (delivered/s, p99, CPU, KB per connection)`,
        hs,
        '',
        '',
        'ahead on all four',
        cmp?.met ?? null,
      );
    }
  }
  for (const c of r.checks ?? []) {
    if (c.ok || !isPeerCheck(c)) continue;
    const at = checkAt(c);
    add(`Pushpin (the peer; no target)${at ? ` at ${at}` : ''}`, peerFact(c), '', '', '', null);
  }
  const sat = r.saturation ?? {};
  if (sat.hookstream && sat.bare) {
    const p99Ms = sat.hookstream.p99Ms;
    const h = sat.hookstream.best?.rate ?? 0;
    const b = sat.bare.best?.rate ?? 0;
    add(
      `highest rate with p99 < ${p99Ms} ms (× ${fmtNum(sat.hookstream.steps[0]?.clients)} clients)`,
      saturationText(sat.hookstream),
      saturationText(sat.bare),
      b ? ratio(h / b) : '–',
      '',
      null,
    );
  }
  return rows;
}

/**
 * A delivery check's counts: carried as numbers, or, in a results file written before checks carried them, read
 * from its detail.
 */
function countsOf(c) {
  if (c.counts) return c.counts;
  const m =
    /(\d+) deliveries of (\d+) expected; lost (\d+), duplicates (\d+), gaps (\d+), clients incomplete (\d+)/.exec(
      c.detail ?? '',
    );
  if (!m) return null;
  const [deliveries, expected, lost, dups, gaps, incomplete] = m.slice(1).map(Number);
  return { deliveries, expected, lost, dups, gaps, incomplete };
}

/** Where in the run a check was made ("200 events/s", "warm-up", …), or undefined. */
function checkAt(c) {
  return c.at ?? /^(.*?): every client/.exec(c.what)?.[1];
}

/** One failed check of the peer as a plain statement: its loss, or what did not happen. */
function peerFact(c) {
  const loss = peerLoss(countsOf(c));
  if (loss) return loss;
  if (c.what === 'Pushpin ran')
    return `did not start: ${String(c.detail ?? '')
      .split('\n')[0]
      .replace(/^Error: /, '')}`;
  return `not so: ${c.what} (${c.detail})`;
}

/** The three-way table, as rows of cells: figure, Hookstream, bare, Pushpin, HS ÷ bare, HS ÷ Pushpin, verdict. */
function threeWay(r) {
  const state = pushpinState(r);
  const out = [];
  const pp = (fn) => (state === 'measured' ? fn() : state);
  for (const v of r.variants ?? []) {
    const x = v.hookstream;
    const y = v.bare;
    const z = v.pushpin;
    if (!x || !y) continue;
    const tag = `${fmtNum(v.params.rate)}/s × ${fmtNum(x.clients)}`;
    const cmp = state === 'measured' ? versusPushpin(r, v) : null;
    const f = (i) => ratio(cmp?.figures[i].ratio);
    const parts = z?.serverCpuPartsMsPer1k;
    out.push([
      `${tag}: delivered/s`,
      fmtNum(x.deliveredPerS),
      fmtNum(y.deliveredPerS),
      pp(() => fmtNum(z?.deliveredPerS)),
      ratio(div(x.deliveredPerS, y.deliveredPerS)),
      f(0),
    ]);
    out.push([`${tag}: p99 ms`, ms(x.p99), ms(y.p99), pp(() => ms(z?.p99)), ratio(div(x.p99, y.p99)), f(1)]);
    out.push([
      `${tag}: CPU µs per delivery`,
      ms(x.serverCpuMsPer1kDeliveries),
      ms(y.serverCpuMsPer1kDeliveries),
      pp(() => `${ms(z?.serverCpuMsPer1kDeliveries)}${parts ? ` (origin ${ms(parts.origin)})` : ''}`),
      ratio(div(x.serverCpuMsPer1kDeliveries, y.serverCpuMsPer1kDeliveries)),
      f(2),
    ]);
    out.push([
      `${tag}: lost / duplicate / gaps`,
      `${x.lost} / ${x.dups} / ${x.gaps}`,
      `${y.lost} / ${y.dups} / ${y.gaps}`,
      pp(() => (z ? `${z.lost} / ${z.dups} / ${z.gaps}` : '–')),
      '',
      '',
    ]);
    if (cmp) {
      const verdict =
        cmp.met === true
          ? 'met'
          : cmp.met === false
            ? `NOT met (behind on ${cmp.behind.join(', ')})`
            : `not decided (${cmp.unknown.join(', ')} not measurable)`;
      out.push([`${tag}: target "ahead of Pushpin on all four"`, verdict, '', '', '', '']);
    }
  }
  const mem = r.memory ?? {};
  if (mem.hookstream) {
    const few = mem.hookstream.clients < MIN_CLIENTS_FOR_MEMORY;
    const h = mem.hookstream.bytesPerConnection;
    const vs = (other) =>
      memoryMeasurable(mem.hookstream) && memoryMeasurable(other) ? ratio(div(h, other.bytesPerConnection)) : '–';
    const connected = (m) =>
      m?.openRetries ? `${fmtNum(m.clients)} (${fmtNum(m.openRetries)} opens retried after a 5xx)` : fmtNum(m?.clients);
    out.push([
      'clients connected',
      connected(mem.hookstream),
      connected(mem.bare),
      pp(() => connected(mem.pushpin)),
      '',
      '',
    ]);
    out.push([
      `KB per idle connection${few ? ' (too few clients to measure)' : ''}`,
      kb(h),
      kb(mem.bare?.bytesPerConnection),
      pp(() => kb(mem.pushpin?.bytesPerConnection)),
      vs(mem.bare),
      state === 'measured' ? vs(mem.pushpin) : '–',
    ]);
  }
  const sat = r.saturation ?? {};
  if (sat.hookstream) {
    out.push([
      `highest rate with p99 < ${sat.hookstream.p99Ms} ms`,
      saturationText(sat.hookstream),
      saturationText(sat.bare),
      pp(() => saturationText(sat.pushpin)),
      ratio(div(sat.hookstream.best?.rate, sat.bare?.best?.rate)),
      state === 'measured' ? ratio(div(sat.hookstream.best?.rate, sat.pushpin?.best?.rate)) : '–',
    ]);
  }
  return out;
}

const HEAD = ['figure', 'Hookstream', 'bare', 'Pushpin', 'HS ÷ bare', 'HS ÷ Pushpin'];

function peerResults(run) {
  return run.results.filter((r) => r.scenario === 'fanout-sse' && !r.error && pushpinState(r));
}

function describe(r) {
  const state = pushpinState(r);
  if (state !== 'measured') return `Pushpin: ${state}.`;
  const procs = r.pushpinProcesses?.length ? r.pushpinProcesses.join(', ') : 'its services';
  return `${r.pushpin} behind a GRIP origin (\`bench/refs/ref-pushpin.mjs\`) on the bare reference's feed, publishing each event once; Pushpin's CPU and RSS are summed over the \`pushpin\` runner and every process under it (${procs}) plus the origin. Pushpin's \`message_rate\`: ${fmtNum(r.params?.pushpin?.messageRate ?? null)} per second.`;
}

/** Distinct warning/error lines from Pushpin's logs (timestamps and ids dropped), at most `max`. */
function pushpinWarnings(r, max = 3) {
  const seen = new Set();
  for (const line of (r.pushpinLog ?? '').split('\n')) {
    const m = /\[(WARN|ERR\w*)\]\s+\S+\s+\S+\s+(.*)/.exec(line);
    if (m) seen.add(`[${m[1]}] ${m[2].replace(/id=\S+/g, 'id=…')}`);
    if (seen.size >= max) break;
  }
  return [...seen];
}

/**
 * Pushpin's own losses in this result, one sentence per measured rate or step where it had any: the peer's
 * result, measured by the same client, not one of Hookstream's checks.
 */
function peerLossNotes(r) {
  const out = [];
  for (const c of r.checks ?? []) {
    if (c.ok || !isPeerCheck(c)) continue;
    const loss = peerLoss(countsOf(c));
    const at = checkAt(c);
    if (loss) out.push(`${at ? `At ${at}, ` : ''}${loss}.`);
  }
  if (!out.length) return [];
  return [
    ...out,
    "These are Pushpin's own results (its clients saw the gaps; the client is the one Hookstream is measured with), not checks of Hookstream: they count in neither the met column nor the correctness verdict.",
  ];
}

/** Markdown lines for the three-way section (empty when no SSE fan-out ran). */
export function peerMarkdown(run) {
  const results = peerResults(run);
  if (!results.length) return [];
  const out = ['## SSE fan-out: Hookstream vs bare vs Pushpin', ''];
  for (const r of results) {
    out.push(`### ${r.store}`, '', describe(r), '');
    out.push(`| ${HEAD.join(' | ')} |`, '|---|---:|---:|---:|---:|---:|');
    for (const row of threeWay(r)) out.push(`| ${row.join(' | ')} |`);
    out.push('');
    const losses = peerLossNotes(r);
    if (losses.length) out.push(losses.join(' '), '');
    const warnings = pushpinWarnings(r);
    if (warnings.length)
      out.push(
        "Pushpin's own log (warnings and errors, first distinct ones):",
        '',
        ...warnings.map((w) => `    ${w}`),
        '',
      );
  }
  out.push(
    'Ahead = higher delivered/s (within 1% counts: both delivered what was offered), lower p99, lower CPU per delivery, lower RSS growth per idle connection. Server CPU: the gateway process (Hookstream), the reference process (bare), every Pushpin process plus the origin (Pushpin); nats-server is counted for none of them. All three frame the same stored event; a delivery Pushpin never made counts as lost, not as slow. KB per idle connection: settled RSS after the clients connected minus before, over the clients (a process with heap room to spare shows less growth). Highest rate: the publish rate stepped up ×1.5 on the same clients (a few seconds each) until p99 reaches the bound or anything is lost.',
    '',
  );
  return out;
}

/** The three-way table on stdout. */
export function printPeers(run) {
  for (const r of peerResults(run)) {
    const rows = threeWay(r);
    const widths = HEAD.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
    const line = (vals) => vals.map((v, i) => String(v).padEnd(widths[i])).join('  ');
    process.stdout.write(
      `\nfanout-sse · ${r.store}: ${describe(r)}\n${line(HEAD)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`,
    );
    for (const row of rows) process.stdout.write(`${line(row)}\n`);
    for (const note of peerLossNotes(r)) process.stdout.write(`${note}\n`);
  }
}
