// Small helpers shared by the bench orchestrator and its worker processes: time, waiting, latency histograms,
// /proc readings and the machine's description.
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { natsServerBin } from '../../test/lib/nats-server.mjs';
import { sleep } from '../../test/lib/procs.mjs';

/** Wall-clock ms with sub-ms resolution, comparable across processes on one machine. */
export const nowMs = () => performance.timeOrigin + performance.now();

export { sleep };

/** Polls `fn` until it returns a truthy value or the deadline passes (then returns the last value). */
export async function waitFor(fn, { timeoutMs = 30_000, everyMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await sleep(everyMs);
  }
}

// ---- latency histogram: log buckets, ~2.5% resolution, mergeable across processes --------------------

const SCALE = 40; // bucket = round(ln(µs) * SCALE)

export class Histogram {
  constructor(buckets = {}) {
    this.buckets = new Map(Object.entries(buckets).map(([k, v]) => [Number(k), v]));
    this.count = 0;
    for (const v of this.buckets.values()) this.count += v;
  }

  /** Records a latency in ms. */
  add(ms) {
    const us = Math.max(1, ms * 1000);
    const b = Math.round(Math.log(us) * SCALE);
    this.buckets.set(b, (this.buckets.get(b) ?? 0) + 1);
    this.count++;
  }

  merge(other) {
    const entries = other instanceof Histogram ? other.buckets.entries() : Object.entries(other ?? {});
    for (const [k, v] of entries) {
      const b = Number(k);
      this.buckets.set(b, (this.buckets.get(b) ?? 0) + v);
      this.count += v;
    }
    return this;
  }

  toJSON() {
    return Object.fromEntries(this.buckets);
  }

  /** The q-quantile (0..1) in ms, or null when empty. */
  quantile(q) {
    if (this.count === 0) return null;
    const keys = [...this.buckets.keys()].sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const k of keys) {
      seen += this.buckets.get(k);
      if (seen >= rank) return Math.exp(k / SCALE) / 1000;
    }
    return Math.exp(keys[keys.length - 1] / SCALE) / 1000;
  }

  summary() {
    return { count: this.count, p50: this.quantile(0.5), p99: this.quantile(0.99), max: this.quantile(1) };
  }
}

// ---- /proc ----------------------------------------------------------------------------------------------

const TICKS = 100; // USER_HZ on Linux

/** RSS of a process in bytes (VmRSS), or null when it is gone. */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used so far, or null when it is gone. */
export function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return null;
  }
}

/** CPU seconds used by the whole machine (all cores, not idle) so far. */
export function machineCpu() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / TICKS, total: total / TICKS };
}

export function machineInfo() {
  let cpuModel = 'unknown';
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1].trim();
  } catch {
    // not Linux
  }
  let nats = 'not found';
  try {
    nats = execFileSync(natsServerBin() ?? 'nats-server', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as not found
  }
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux
  }
  return {
    cpuModel,
    cores: cpus().length,
    ramGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    natsServer: nats.replace(/^nats-server:\s*/, ''),
    kernel,
  };
}

// ---- Standard Webhooks signing (the generator's side; the gateway verifies) -------------------------------

export const BENCH_SECRET = 'whsec_YmVuY2gtc2VjcmV0LWZvci1ob29rc3RyZWFtLWJlbmNo';
const BENCH_KEY = Buffer.from(BENCH_SECRET.slice('whsec_'.length), 'base64');

/** Headers for one Standard-Webhooks delivery of `body` with id `id`. */
export function signStandardWebhook(id, body, nowSec = Math.floor(Date.now() / 1000)) {
  const sig = createHmac('sha256', BENCH_KEY).update(`${id}.${nowSec}.${body}`).digest('base64');
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(nowSec),
    'webhook-signature': `v1,${sig}`,
  };
}

export { BENCH_KEY };

/** A JSON webhook body of `size` bytes carrying the publish time `t` and a counter `n`. */
export function webhookBody(n, t, size = 512, type = 'bench.tick') {
  const head = { type, n, t, pad: '' };
  const base = JSON.stringify(head).length;
  head.pad = 'x'.repeat(Math.max(0, size - base));
  return JSON.stringify(head);
}

/** Seq from a cursor `<epoch>_<seq>`. */
export function cursorSeq(cursor) {
  const i = cursor.lastIndexOf('_');
  return Number(cursor.slice(i + 1));
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** POSTs `body` on a keep-alive agent; resolves `{status, json}` (status 0 on a network error), never rejects. */
export function postJson(agent, url, headers, body) {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString());
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode, json });
        });
      },
    );
    req.on('error', (err) => resolve({ status: 0, json: { error: err.message } }));
    req.end(body);
  });
}

/** Least-squares slope of y over x for [x, y] points (e.g. bytes per client); null with fewer than two x values. */
export function slope(points) {
  const n = points.length;
  if (n < 2) return null;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den ? num / den : null;
}
