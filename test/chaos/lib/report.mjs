/** Small helpers for the runs' reports: argument parsing, a seeded PRNG, tables, statistics. */

/** `--name value`, `--name=value` and bare `--flag`. */
export function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[a.slice(2)] = argv[++i];
    else out[a.slice(2)] = true;
  }
  return out;
}

/** mulberry32: reproducible choices from --seed. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A plain-text table with aligned columns. */
export function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c)));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n');
}

export const seconds = (ms) =>
  ms === undefined || ms === null || Number.isNaN(ms) ? '—' : `${(ms / 1000).toFixed(1)} s`;

export const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** Least-squares slope of y over x (per unit of x) and the standard error of that slope. */
export function slope(points) {
  const n = points.length;
  if (n < 3) return { slope: NaN, stderr: NaN };
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
  }
  const b = sxy / sxx;
  let sse = 0;
  for (const [x, y] of points) sse += (y - (my + b * (x - mx))) ** 2;
  return { slope: b, stderr: Math.sqrt(sse / (n - 2) / sxx) };
}

export function log(msg) {
  const t = new Date().toISOString().slice(11, 23);
  process.stdout.write(`[${t}] ${msg}\n`);
}
