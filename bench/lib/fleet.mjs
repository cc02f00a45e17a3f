// Client generator processes (bench/workers/clients.mjs), at most PER_PROCESS clients each (file-descriptor
// limit per process), with their answers summed. Process i connects from its own loopback source address,
// 127.0.0.(2+i): one address has ~28k ephemeral ports towards one server port, and a reconnect storm of 10,000
// clients leaves as many sockets in TIME_WAIT as it opens, so one address would run out.
import { join } from 'node:path';
import { ROOT } from './gateway.mjs';
import { Worker } from './workers.mjs';
import { Histogram } from './util.mjs';

/**
 * HS_BENCH_CLIENT_PROF=DIR runs the client processes under `node --cpu-prof`, a profile per process written to DIR
 * when the fleet exits (`--profile` profiles only the gateway): where the load generator's own CPU goes.
 */
const CLIENT_PROF = process.env.HS_BENCH_CLIENT_PROF;

/** The default cap per process; a fleet may be given another (`perProcess`), within the process's fd limit. */
export const PER_PROCESS = 2_500;
const SCRIPT = join(ROOT, 'bench', 'workers', 'clients.mjs');

const SUM_KEYS = [
  'clients',
  'connected',
  'received',
  'dups',
  'gaps',
  'missing',
  'gapNotices',
  'closings',
  'errors',
  'live',
  'reached',
  'drops',
  'behind',
];

/** The loopback address client process `i` connects from (the whole of 127/8 is loopback on Linux). */
export function sourceAddress(i) {
  return `127.0.0.${2 + i}`;
}

export class Fleet {
  constructor(processes, { perProcess = PER_PROCESS } = {}) {
    this.perProcess = perProcess;
    this.workers = Array.from(
      { length: processes },
      (_, i) =>
        new Worker(SCRIPT, [], {
          env: { HS_BENCH_SOURCE_ADDRESS: sourceAddress(i) },
          execArgv: CLIENT_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CLIENT_PROF}`] : [],
        }),
    );
    this.counts = this.workers.map(() => 0);
  }

  get pids() {
    return this.workers.map((w) => w.pid);
  }

  /**
   * Opens `count` clients, spread so every process stays under PER_PROCESS and the load is even.
   * Returns {opened, errors, cursors}.
   */
  async open(count, opts) {
    const shares = this.workers.map(() => 0);
    for (let i = 0; i < count; i++) {
      // next client to the least loaded process
      let best = 0;
      for (let w = 1; w < this.workers.length; w++) {
        if (this.counts[w] + shares[w] < this.counts[best] + shares[best]) best = w;
      }
      if (this.counts[best] + shares[best] >= this.perProcess)
        throw new Error(`more than ${this.perProcess * this.workers.length} clients`);
      shares[best]++;
    }
    const answers = await Promise.all(
      this.workers.map((w, i) => (shares[i] ? w.call('open', { ...opts, count: shares[i] }) : null)),
    );
    shares.forEach((s, i) => (this.counts[i] += s));
    const out = { opened: 0, errors: [], cursors: [], retried: 0 };
    for (const a of answers) {
      if (!a) continue;
      out.opened += a.opened;
      out.retried += a.retried ?? 0;
      out.errors.push(...a.errors);
      out.cursors.push(...a.cursors);
    }
    return out;
  }

  async each(cmd, args) {
    return Promise.all(this.workers.map((w) => w.call(cmd, args)));
  }

  async record() {
    await this.each('record');
  }

  /** Summed counters; `targets` ({lastSeq, lastByTopic}) counts clients still `behind` them. */
  async stats(full = false, targets) {
    const parts = await this.each('stats', { full, targets });
    const out = Object.fromEntries(SUM_KEYS.map((k) => [k, 0]));
    out.minLast = Infinity;
    out.firstAt = Infinity;
    out.lastAt = 0;
    const hist = new Histogram();
    const timings = [];
    out.errorReasons = {};
    for (const p of parts) {
      for (const k of SUM_KEYS) out[k] += p[k];
      if (p.clients) out.minLast = Math.min(out.minLast, p.minLast);
      if (p.firstAt) out.firstAt = Math.min(out.firstAt, p.firstAt);
      out.lastAt = Math.max(out.lastAt, p.lastAt);
      if (full) {
        for (const [why, n] of Object.entries(p.errorReasons ?? {}))
          out.errorReasons[why] = (out.errorReasons[why] ?? 0) + n;
        hist.merge(p.hist);
        timings.push(...p.timings);
      }
    }
    if (out.minLast === Infinity) out.minLast = 0;
    if (out.firstAt === Infinity) out.firstAt = 0;
    if (full) {
      out.hist = hist;
      out.timings = timings;
    }
    return out;
  }

  /** Final check against what was stored: {lastSeq, seqsByTopic}. */
  async verify(stored) {
    const parts = await this.each('verify', stored);
    const out = { clients: 0, incomplete: 0, missingAtEnd: 0, dups: 0, gaps: 0, missing: 0, unexpected: 0 };
    for (const p of parts) for (const k of Object.keys(out)) out[k] += p[k];
    return out;
  }

  /** Waits until no client is behind `targets` ({lastSeq, lastByTopic}), or the timeout; returns the last stats. */
  async drained(targets, timeoutMs, onTick) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.stats(false, targets);
      onTick?.(s);
      if (s.behind === 0 || Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async closeAll() {
    await this.each('closeAll');
    this.counts = this.workers.map(() => 0);
  }

  async stop() {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}
