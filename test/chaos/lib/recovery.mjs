/**
 * The chaos run's recovery figures, from the provider's acks and the clients' outages: how long after each
 * fault the first webhook got a 2xx again, which clients it cost a resume and for how long they were not
 * live while events were flowing, and the longest stretch without any 2xx. Fills in each fault's record.
 */

/**
 * @param {{producer: object, subscribers: object[], faults: object[], t0: number, producedUntil: number,
 *          silenceMs: number}} run
 */
export function recoveryTimes({ producer, subscribers, faults, t0, producedUntil, silenceMs }) {
  const faultBefore = (t) => faults.filter((f) => f.at <= t).at(-1);
  const ackTimes = producer.acks.map((a) => a.at).sort((x, y) => x - y);
  // Events were flowing at t if some webhook was acknowledged in the second before t.
  const flowing = (t) => {
    let lo = 0;
    let hi = ackTimes.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ackTimes[mid] <= t - 1_000) lo = mid + 1;
      else hi = mid;
    }
    return lo < ackTimes.length && ackTimes[lo] <= t;
  };
  const flowingMs = (from, to) => {
    let ms = 0;
    for (let t = from; t < to; t += 100) if (flowing(t)) ms += Math.min(100, to - t);
    return ms;
  };
  const outages = [];
  for (const s of subscribers) {
    for (const o of s.outages) {
      if (o.why === 'start' || o.why === 'stop' || o.from < t0 || o.from > producedUntil) continue;
      // Attributed to the last fault before the client noticed (a frozen peer is noticed after the silence).
      const noticed = o.why === 'silence' ? o.from + silenceMs : o.from;
      outages.push({
        client: s.name,
        // Not live while events were flowing: an ingest outage inside it (an election) is not counted.
        ms: flowingMs(o.from, o.to),
        rawMs: o.to - o.from,
        why: o.why,
        from: o.from,
        noticed,
        fault: faultBefore(noticed),
      });
    }
  }
  const maxOutage = outages.reduce((m, o) => (o.ms > m.ms ? o : m), { ms: 0 });
  let longestIngestStall = 0;
  for (let i = 1; i < ackTimes.length; i++)
    longestIngestStall = Math.max(longestIngestStall, ackTimes[i] - ackTimes[i - 1]);
  for (const f of faults) {
    const first = producer.acks.filter((a) => a.startedAt >= f.at).reduce((m, a) => Math.min(m, a.at), Infinity);
    f.firstIngestMs = first === Infinity ? undefined : first - f.at;
    const mine = outages.filter((o) => o.fault === f);
    f.clientsAffected = new Set(mine.map((o) => o.client)).size;
    f.reasons = {};
    for (const o of mine) f.reasons[o.why] = (f.reasons[o.why] ?? 0) + 1;
    f.maxClientOutageMs = mine.reduce((m, o) => Math.max(m, o.ms), 0);
  }
  const maxFirstIngest = faults.reduce((m, f) => Math.max(m, f.firstIngestMs ?? Infinity), 0);
  return { outages, maxOutage, longestIngestStall, maxFirstIngest };
}

/**
 * How long answered attempts took (a 503 must come within a few seconds, never a hang), p99 and max, and the
 * 20 slowest; attempts sent to a gateway while it was frozen are left out (their wait is the SIGSTOP, not the
 * gateway).
 */
export function answerTimes(producer, faults, t0) {
  const pauses = faults.filter((f) => f.kind === 'gateway-pause');
  const frozen = (a) => pauses.some((f) => f.url === a.url && a.startedAt < f.doneAt && a.startedAt + a.ms > f.at);
  const answeredMs = { ok: [], unavailable: [] };
  for (const r of producer.deliveries.values()) {
    for (const a of r.attempts) {
      if (typeof a.status !== 'number' || frozen(a)) continue;
      if (a.status < 300) answeredMs.ok.push(a.ms);
      else if (a.status === 503) answeredMs.unavailable.push(a.ms);
    }
  }
  const slowest = [];
  for (const r of producer.deliveries.values()) {
    for (const a of r.attempts) {
      if (typeof a.status === 'number' && !frozen(a)) slowest.push({ ...a, at: a.startedAt - t0, id: r.id });
    }
  }
  slowest.sort((x, y) => y.ms - x.ms);
  slowest.length = Math.min(slowest.length, 20);
  const pct = (list, q) => [...list].sort((x, y) => x - y)[Math.min(list.length - 1, Math.floor(list.length * q))] ?? 0;
  const answerP99 = { ok: pct(answeredMs.ok, 0.99), unavailable: pct(answeredMs.unavailable, 0.99) };
  const answerMax = { ok: pct(answeredMs.ok, 1), unavailable: pct(answeredMs.unavailable, 1) };
  return { answerP99, answerMax, slowest };
}
