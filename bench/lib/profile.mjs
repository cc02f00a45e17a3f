// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per package, so a
// report can say where the gateway's CPU went.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './gateway.mjs';

function where(url) {
  if (!url) return '';
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (path.startsWith('node:')) return 'node';
  if (path.startsWith(ROOT)) return relative(ROOT, path);
  return path;
}

function pkgOf(url) {
  const w = where(url);
  if (!w) return '(vm)';
  if (w.startsWith('dist/')) return 'hookstream (dist/)';
  if (w === 'node') return 'node core';
  return w.includes('/') && !w.startsWith('@') ? w.split('/')[0] : w;
}

/** The newest .cpuprofile in dir, or null. */
export function newestProfile(dir) {
  let best = null;
  try {
    for (const f of readdirSync(dir)) {
      if (!f.endsWith('.cpuprofile')) continue;
      const p = join(dir, f);
      const m = statSync(p).mtimeMs;
      if (!best || m > best.m) best = { p, m };
    }
  } catch {
    return null;
  }
  return best?.p ?? null;
}

/**
 * Top self-time functions and packages of a profile; times in ms, shares of the sampled (non-idle) time.
 * `fromUs`: only samples after this monotonic time (µs, the clock of process.hrtime and V8's profiles), so
 * start-up (module loading) does not dilute the picture.
 */
export function summariseProfile(file, { top = 15, fromUs = 0 } = {}) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let at = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    at += prof.timeDeltas[i] ?? 0;
    if (at < fromUs) continue;
    const dt = (prof.timeDeltas[i + 1] ?? prof.timeDeltas[i] ?? 0) / 1000;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  const fns = new Map();
  const pkgs = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, ms] of self) {
    const { callFrame: cf } = byId.get(id);
    const name = cf.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += ms;
      continue;
    }
    total += ms;
    const loc = cf.url ? `${where(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${name} ${loc}`;
    fns.set(key, { name, loc, ms: (fns.get(key)?.ms ?? 0) + ms });
    const pkg = cf.url ? pkgOf(cf.url) : name;
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + ms);
  }
  const share = (ms) => Math.round((ms / total) * 1000) / 10;
  return {
    file: relative(ROOT, file),
    busyMs: Math.round(total),
    idleMs: Math.round(idle),
    functions: [...fns.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((f) => ({ ...f, ms: Math.round(f.ms), share: share(f.ms) })),
    packages: [...pkgs.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([pkg, ms]) => ({ pkg, ms: Math.round(ms), share: share(ms) })),
  };
}
