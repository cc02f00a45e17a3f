/**
 * The chaos run's timeline: every second, the stream's head and each gateway's live-tap position, clients and
 * deliveries (from its /metrics), and which clients are live where; one JSON line per sample in
 * monitor.jsonl. From the samples, how long each gateway's live tap stayed behind the stream.
 */
import { createWriteStream } from 'node:fs';

/**
 * Starts sampling every second; `stop()` ends it. `subscribers` is read at each sample.
 * @param {{inspector: object, gateways: object[], subscribers: () => object[], t0: number, file: string}} opts
 */
export function startMonitor({ inspector, gateways, subscribers, t0, file }) {
  const samples = [];
  const monitorLog = createWriteStream(file);
  let sampling = false;
  const timer = setInterval(async () => {
    if (sampling) return;
    sampling = true;
    const row = { t: Date.now() - t0 };
    try {
      row.lastSeq = (await inspector.info()).state.last_seq;
    } catch {
      row.lastSeq = null;
    }
    for (const gw of gateways) {
      if (!gw.running || gw.paused) {
        row[gw.name] = gw.paused ? 'paused' : 'down';
        continue;
      }
      try {
        row[gw.name] = await gw.metrics([
          'hookstream_live_sequence',
          'hookstream_connected_clients',
          'hookstream_deliveries_total',
          'hookstream_outbound_pending',
        ]);
      } catch (err) {
        row[gw.name] = String(err?.message ?? err);
      }
    }
    row.at = Date.now() - t0;
    row.live = subscribers()
      .filter((s) => s.live)
      .map((s) => `${s.name}@${gateways.find((g) => g.url === s.sessions.at(-1)?.url)?.name}`);
    samples.push(row);
    monitorLog.write(`${JSON.stringify(row)}\n`);
    sampling = false;
  }, 1_000);
  return { samples, stop: () => clearInterval(timer) };
}

/**
 * Longest time each gateway's live tap stayed behind: from the first sample where its live sequence was
 * below the stream's head of a sample at least 2 s older, to the first sample where it had caught up with
 * it. Samples of a gateway that is down or paused end a run (that is the fault itself, not a stall).
 */
export function liveTapStalls(gateways, samples) {
  const out = {};
  for (const gw of gateways) {
    let worst = { ms: 0 };
    let since = null;
    for (let i = 0; i < samples.length; i++) {
      const row = samples[i];
      const m = row[gw.name];
      const seq = typeof m === 'object' ? m.hookstream_live_sequence : undefined;
      const older = samples.slice(0, i).findLast((r) => r.t <= row.t - 2_000 && typeof r.lastSeq === 'number');
      if (seq === undefined || !older) {
        since = null;
        continue;
      }
      if (seq < older.lastSeq) {
        since ??= older.t;
        if (row.t - since > worst.ms) worst = { ms: row.t - since, from: since, to: row.t };
      } else since = null;
    }
    out[gw.name] = worst;
  }
  return out;
}
