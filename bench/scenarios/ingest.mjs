// Scenario 1 — ingest: Standard-Webhooks-signed 512-byte webhooks, N concurrent keep-alive connections, a
// new webhook id each time. Hookstream vs the bare ingest reference (node:http + crypto + durable append).
// Both servers run side by side (each on its own nats-server or data dir) and take the load in alternating
// rounds, so a slow spell of the machine hits both rather than one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../lib/gateway.mjs';
import { cpuMeter, withTarget } from '../lib/phase.mjs';
import { Worker } from '../lib/workers.mjs';
import { Histogram } from '../lib/util.mjs';

const LOAD = join(ROOT, 'bench', 'workers', 'ingest-load.mjs');

function emptyTotals() {
  return {
    measured: 0,
    seconds: 0,
    hist: new Histogram(),
    non2xx: 0,
    requests: 0,
    accepted: 0,
    statuses: {},
    duplicateSeqs: 0,
    duplicateAnswers: 0,
    serverCpuS: 0,
    natsCpuS: 0,
    genCpuS: 0,
    wallS: 0,
  };
}

/**
 * P.rounds rounds in which every target takes the load in turn, the order reversed every other round; each
 * target's figures are added into its totals. `size` is the webhook body size (the worker's default when unset).
 */
async function alternatingRounds(ctx, P, targets, label, size) {
  const kinds = Object.keys(targets);
  const totals = Object.fromEntries(kinds.map((kind) => [kind, emptyTotals()]));
  for (let round = 0; round < P.rounds; round++) {
    for (const kind of round % 2 === 0 ? kinds : [...kinds].reverse()) {
      const t = targets[kind];
      const tot = totals[kind];
      ctx.progress(`${label} · round ${round + 1}/${P.rounds} · ${kind}: ${P.connections} connections`);
      const load = new Worker(LOAD);
      try {
        const started = Date.now();
        const meter = cpuMeter([t.pid, t.natsPid, load.pid]);
        const r = await load.call('run', {
          url: t.url,
          connections: P.connections,
          warmupMs: round === 0 ? P.warmupMs : 0, // each server's first round warms it up
          durationMs: P.roundMs,
          size,
        });
        const [server, nats, gen] = meter();
        tot.wallS += (Date.now() - started) / 1000;
        tot.measured += r.measured;
        tot.seconds += P.roundMs / 1000;
        tot.hist.merge(r.hist);
        tot.non2xx += r.non2xx;
        tot.requests += r.total;
        tot.accepted += r.accepted;
        tot.duplicateSeqs += r.duplicateSeqs;
        tot.duplicateAnswers += r.duplicateAnswers;
        for (const [k, v] of Object.entries(r.statuses)) tot.statuses[k] = (tot.statuses[k] ?? 0) + v;
        tot.serverCpuS += server?.cpuS ?? 0;
        tot.natsCpuS += nats?.cpuS ?? 0;
        tot.genCpuS += gen?.cpuS ?? 0;
      } finally {
        await load.stop();
      }
    }
  }
  return totals;
}

/** One target's row of the results: rates, latency, answers and CPU, from its totals over every round. */
function totalsRow(t) {
  return {
    rps: t.measured / t.seconds,
    p50: t.hist.quantile(0.5),
    p99: t.hist.quantile(0.99),
    non2xx: t.non2xx,
    requests: t.requests,
    accepted: t.accepted,
    statuses: t.statuses,
    duplicateSeqs: t.duplicateSeqs,
    duplicateAnswers: t.duplicateAnswers,
    serverCores: t.serverCpuS / t.wallS,
    natsCores: t.natsCpuS / t.wallS,
    generatorCores: t.genCpuS / t.wallS,
    serverCpuUsPerRequest: (t.serverCpuS * 1e6) / t.requests,
  };
}

export async function ingest(ctx, store) {
  const P = ctx.P.ingest;
  const out = { scenario: 'ingest', store, params: P, checks: [] };
  const totals = await withTarget(
    { store, kind: 'hookstream', profile: ctx.profileName('ingest', store, 'hookstream') },
    (hs) =>
      withTarget({ store, kind: 'bare', ref: 'ref-ingest' }, (bare) =>
        alternatingRounds(ctx, P, { hookstream: hs, bare }, `ingest · ${store}`),
      ),
  );
  for (const kind of ['hookstream', 'bare']) {
    out[kind] = totalsRow(totals[kind]);
    const r = out[kind];
    out.checks.push({
      who: kind,
      what: 'every acknowledged webhook got its own seq; no new id answered as a duplicate',
      ok: r.duplicateSeqs === 0 && r.duplicateAnswers === 0,
      detail: `${r.accepted} accepted, ${r.duplicateSeqs} seqs acknowledged twice, ${r.duplicateAnswers} duplicate answers, ${r.non2xx} non-2xx`,
    });
  }
  out.ratios = {
    rps: out.hookstream.rps / out.bare.rps,
    p99: out.hookstream.p99 / out.bare.p99,
    cpuPerRequest: out.hookstream.serverCpuUsPerRequest / out.bare.serverCpuUsPerRequest,
  };
  return out;
}

// Scenario 1b — ingest-with-schema: the cost of enforcing a JSON Schema on every webhook. Two Hookstream gateways
// take the same closed-loop load (1 KB webhooks) in alternating rounds: one with no schema, one with a schema on
// the webhooks' subject in `enforce` mode (so every 202 is an event that was validated and stamped with its
// dataschema; one that failed would be a 422 and count as non-2xx).
const BENCH_SCHEMA = {
  type: 'object',
  properties: {
    type: { type: 'string', enum: ['bench.tick'] },
    n: { type: 'integer', minimum: 0 },
    t: { type: 'number' },
    pad: { type: 'string', maxLength: 8192 },
  },
  required: ['type', 'n', 't', 'pad'],
  additionalProperties: false,
};

export async function ingestWithSchema(ctx, store) {
  const P = { ...ctx.P.ingest, size: 1024 };
  const out = { scenario: 'ingest-with-schema', store, params: P, checks: [] };
  const dir = mkdtempSync(join(tmpdir(), 'hookstream-bench-schema-'));
  const file = join(dir, 'bench-tick.json');
  writeFileSync(file, JSON.stringify(BENCH_SCHEMA));
  const schemas = [{ subject: 'events.bench.bench.tick', versions: [file], mode: 'enforce' }];
  let totals;
  try {
    totals = await withTarget({ store, kind: 'hookstream', config: { schemas } }, (withSchema) =>
      withTarget({ store, kind: 'hookstream' }, (plain) =>
        alternatingRounds(ctx, P, { schema: withSchema, plain }, `ingest-with-schema · ${store}`, P.size),
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  out.schema = totalsRow(totals.schema);
  out.plain = totalsRow(totals.plain);
  out.checks.push({
    who: 'hookstream',
    what: 'every webhook passed its schema (enforce mode: a failure would be a 422)',
    ok: out.schema.non2xx === 0 && out.schema.accepted > 0,
    detail: `${out.schema.accepted} accepted, ${out.schema.non2xx} non-2xx`,
  });
  // The table's columns: Hookstream with the schema, and (in place of a bare reference) Hookstream without one.
  out.hookstream = out.schema;
  out.bare = out.plain;
  out.ratios = {
    rps: out.schema.rps / out.plain.rps,
    p99: out.schema.p99 / out.plain.p99,
    cpuPerRequest: out.schema.serverCpuUsPerRequest / out.plain.serverCpuUsPerRequest,
  };
  return out;
}
