// The scale scenario's part of the report: its table rows (memory per idle connection per transport, and the
// mixed Socket.IO + SSE curve step by step) and the scale-curve SVG.
import { fmtNum } from './util.mjs';

const ms = (v) => (v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : fmtNum(v));
const n0 = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : fmtNum(v));
const ratio = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(2));
const mib = (b) => (b === null || b === undefined ? '–' : (b / 1024 ** 2).toFixed(0));
const kib = (b) => (b === null || b === undefined || !Number.isFinite(b) ? '–' : (b / 1024).toFixed(1));

/** Memory per idle connection: ≤ these ratios to the bare server of the same transport. */
export const MEMORY_TARGETS = { socketio: 1.1, sse: 1.3 };

/** Rows of a scale result; `add(figure, hookstream, bare, ratio, target)` and `target(kind, limit, value)` as report-rows.mjs. */
export function scaleRows(r, add, target) {
  for (const tr of ['socketio', 'sse']) {
    const lv = r.levels?.[tr];
    if (!lv) continue;
    lv.hookstream.forEach((x, i) => {
      const y = lv.bare[i];
      add(
        `${tr} ${n0(x.clients)} idle clients: RSS MiB`,
        mib(x.rssIdle),
        mib(y?.rssIdle),
        ratio(x.rssIdle / y?.rssIdle),
      );
    });
    const m = r.memPerConn[tr];
    // Small steps (a smoke run): RSS noise, no meaningful slope.
    const measurable =
      m.hookstream > 0 && m.bare > 0 && Math.max(...lv.hookstream.map((l) => l.clients)) >= 1_000 ? m.ratio : null;
    add(
      `${tr}: KiB per idle connection`,
      kib(m.hookstream),
      kib(m.bare),
      ratio(measurable),
      target('≤', MEMORY_TARGETS[tr], measurable),
    );
  }
  const hs = r.curve?.hookstream ?? [];
  const bare = r.curve?.bare ?? [];
  hs.forEach((x) => {
    const y = bare.find((b) => b.clients === x.clients);
    const tag = `half Socket.IO, half SSE, ${n0(x.clients)} clients`;
    add(`${tag}: connect s`, ms(x.connectS), ms(y?.connectS), ratio(x.connectS / y?.connectS));
    add(
      `${tag}: RSS idle MiB / KiB per connection`,
      `${mib(x.rssIdle)} / ${kib(x.rssPerConn)}`,
      `${mib(y?.rssIdle)} / ${kib(y?.rssPerConn)}`,
      ratio(x.rssPerConn / y?.rssPerConn),
    );
    for (const [key, name] of [
      ['broadcast', `broadcast of ${r.params.curve.broadcast.events} events`],
      ['topics', `${n0(r.params.curve.topicRate)} events/s over ${n0(r.params.curve.topics)} topics`],
    ]) {
      const a = x[key];
      const b = y?.[key];
      add(
        `${tag}, ${name}: delivered/s (${n0(a.expected)} deliveries)`,
        n0(a.deliveredPerS),
        n0(b?.deliveredPerS),
        ratio(a.deliveredPerS / b?.deliveredPerS),
      );
      add(
        `${tag}, ${name}: publish→receipt p50 / p99 ms`,
        `${ms(a.p50)} / ${ms(a.p99)}`,
        `${ms(b?.p50)} / ${ms(b?.p99)}`,
        ratio(a.p99 / b?.p99),
      );
      add(
        `${tag}, ${name}: server CPU cores / ms per 1k deliveries`,
        `${ratio(a.serverCores)} / ${ms(a.serverCpuMsPer1kDeliveries)}`,
        `${ratio(b?.serverCores)} / ${ms(b?.serverCpuMsPer1kDeliveries)}`,
        ratio(a.serverCpuMsPer1kDeliveries / b?.serverCpuMsPer1kDeliveries),
      );
      add(
        `${tag}, ${name}: lost / duplicate / gaps`,
        `${a.lost} / ${a.dups} / ${a.gaps}`,
        b ? `${b.lost} / ${b.dups} / ${b.gaps}` : '',
        '',
        target('zero', 0, a.lost + a.dups + a.gaps),
      );
    }
  });
}

// ---- SVG: the curve against connected clients ----------------------------------------------------------------

const SERIES = [
  { who: 'hookstream', label: 'Hookstream (half Socket.IO, half SSE)', color: '#1f6feb', dash: '' },
  { who: 'bare', label: 'bare Socket.IO + SSE servers', color: '#d1242f', dash: '6 4' },
];

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panel(x0, y0, w, h, title, curve, value, unit, fmt, offered) {
  const pts = SERIES.map((s) => ({
    s,
    data: (curve[s.who] ?? []).map((l) => [l.clients, value(l)]).filter(([, v]) => Number.isFinite(v)),
  }));
  const xs = pts.flatMap((p) => p.data.map(([x]) => x));
  const ys = pts.flatMap((p) => p.data.map(([, y]) => y));
  if (!xs.length) return '';
  const xmin = Math.min(...xs);
  const xmax = Math.max(...xs);
  const ymax = niceMax(Math.max(...ys, ...(offered ? xs.map(offered) : [])));
  const lx = (x) => x0 + ((Math.log10(x) - Math.log10(xmin)) / (Math.log10(xmax) - Math.log10(xmin) || 1)) * w;
  const ly = (y) => y0 + h - (y / ymax) * h;
  const g = [];
  g.push(
    `<text x="${x0 + w / 2}" y="${y0 - 14}" text-anchor="middle" font-size="14" font-weight="bold">${title}</text>`,
  );
  g.push(`<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0 + h}" stroke="#333"/>`);
  g.push(`<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + h}" stroke="#333"/>`);
  for (let i = 0; i <= 5; i++) {
    const y = (ymax * i) / 5;
    g.push(`<line x1="${x0}" y1="${ly(y)}" x2="${x0 + w}" y2="${ly(y)}" stroke="#ddd"/>`);
    g.push(`<text x="${x0 - 6}" y="${ly(y) + 4}" text-anchor="end" font-size="11">${fmt(y)}</text>`);
  }
  const xsSorted = [...new Set(xs)].sort((a, b) => a - b);
  for (const x of xsSorted) {
    g.push(`<line x1="${lx(x)}" y1="${y0 + h}" x2="${lx(x)}" y2="${y0 + h + 5}" stroke="#333"/>`);
    g.push(`<text x="${lx(x)}" y="${y0 + h + 18}" text-anchor="middle" font-size="11">${fmtNum(x)}</text>`);
  }
  g.push(
    `<text x="${x0 + w / 2}" y="${y0 + h + 36}" text-anchor="middle" font-size="12">connected clients (log scale)</text>`,
  );
  g.push(
    `<text x="${x0 - 52}" y="${y0 + h / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 - 52} ${y0 + h / 2})">${unit}</text>`,
  );
  if (offered) {
    // What was published: the line a server that keeps up follows.
    const d = xsSorted.map((x, i) => `${i ? 'L' : 'M'}${lx(x).toFixed(1)},${ly(offered(x)).toFixed(1)}`).join(' ');
    g.push(`<path d="${d}" fill="none" stroke="#999" stroke-width="1" stroke-dasharray="2 3"/>`);
    g.push(
      `<text x="${lx(xsSorted.at(-1)) - 4}" y="${ly(offered(xsSorted.at(-1))) + 14}" text-anchor="end" font-size="11" fill="#666">offered</text>`,
    );
  }
  for (const { s, data } of pts) {
    if (!data.length) continue;
    const d = data.map(([x, y], i) => `${i ? 'L' : 'M'}${lx(x).toFixed(1)},${ly(y).toFixed(1)}`).join(' ');
    g.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    for (const [x, y] of data)
      g.push(`<circle cx="${lx(x).toFixed(1)}" cy="${ly(y).toFixed(1)}" r="3" fill="${s.color}"/>`);
  }
  return g.join('\n');
}

const thousands = (v) => (v >= 1000 ? `${(v / 1000).toFixed(0)}k` : v.toFixed(0));

export function scaleSvg(scale) {
  const W = 1000;
  const H = 780;
  const C = scale.params.curve;
  const curve = scale.curve ?? {};
  const parts = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    panel(
      90,
      50,
      360,
      260,
      `Server RSS per connection, clients idle (${scale.store})`,
      curve,
      (l) => l.rssPerConn / 1024,
      'KiB',
      (v) => v.toFixed(0),
    ),
  );
  parts.push(
    panel(
      600,
      50,
      360,
      260,
      `Delivered/s, ${fmtNum(C.topicRate)} events/s over ${fmtNum(C.topics)} topics`,
      curve,
      (l) => l.topics.deliveredPerS,
      'deliveries/s',
      thousands,
      (x) => (C.topicRate * x) / C.topics,
    ),
  );
  parts.push(
    panel(
      90,
      420,
      360,
      260,
      `Delivered/s, broadcast of ${C.broadcast.events} events`,
      curve,
      (l) => l.broadcast.deliveredPerS,
      'deliveries/s',
      thousands,
    ),
  );
  parts.push(
    panel(
      600,
      420,
      360,
      260,
      'publish→receipt p99, topic load',
      curve,
      (l) => l.topics.p99,
      'ms',
      (v) => v.toFixed(0),
    ),
  );
  SERIES.forEach((s, i) => {
    const x = 150 + i * 380;
    const y = H - 30;
    parts.push(
      `<line x1="${x}" y1="${y}" x2="${x + 30}" y2="${y}" stroke="${s.color}" stroke-width="2" ${s.dash ? `stroke-dasharray="${s.dash}"` : ''}/>`,
    );
    parts.push(`<text x="${x + 36}" y="${y + 4}" font-size="12">${s.label}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
