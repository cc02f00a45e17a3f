/**
 * Judging what a subscriber recorded against the stream, independently of the gateway's own code: NATS
 * wildcard matching, the seq inside a cursor, and the per-client verdict (lost, duplicated, out of order,
 * wrong event, gaps). Shared by the chaos run's invariants, the outbound judge and the receivers.
 */

/** NATS wildcard matching, independent of the gateway's own matcher. */
export function natsMatch(pattern, subject) {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** The stream seq inside a cursor (`<epoch>_<seq>`); used only to know where a subscription started. */
export function cursorSeq(cursor) {
  const m = /_(\d+)$/.exec(cursor ?? '');
  return m ? Number(m[1]) : NaN;
}

/**
 * Compares what a client received with the stream: the matching stored seqs after its start, in order,
 * each once. Returns the counts (lost, duplicated, out of order, wrong event, gaps).
 */
export function judge(sub, stored) {
  const start = sub.startSeq();
  const expected = [];
  const idBySeq = new Map();
  for (const m of stored) {
    if (m.seq > start && sub.patterns.some((p) => natsMatch(p, m.subject))) {
      expected.push(m.seq);
      idBySeq.set(m.seq, m.eventId);
    }
  }
  const seen = new Map();
  let outOfOrder = 0;
  let wrongEvent = 0;
  let unexpected = 0;
  for (let i = 0; i < sub.seqs.length; i++) {
    const seq = sub.seqs[i];
    seen.set(seq, (seen.get(seq) ?? 0) + 1);
    if (i > 0 && seq <= sub.seqs[i - 1]) outOfOrder++;
    if (!idBySeq.has(seq)) unexpected++;
    else if (idBySeq.get(seq) !== sub.ids[i]) wrongEvent++;
  }
  let lost = 0;
  const lostSeqs = [];
  for (const seq of expected) {
    if (!seen.has(seq)) {
      lost++;
      if (lostSeqs.length < 10) lostSeqs.push(seq);
    }
  }
  let duplicated = 0;
  const dupSeqs = [];
  for (const [seq, n] of seen) {
    if (n > 1) {
      duplicated += n - 1;
      if (dupSeqs.length < 10) dupSeqs.push(seq);
    }
  }
  return {
    expected: expected.length,
    delivered: sub.seqs.length,
    lost,
    lostSeqs,
    duplicated,
    dupSeqs,
    outOfOrder,
    wrongEvent,
    unexpected,
    gaps: sub.gaps.length,
    subjectMismatches: sub.subjectMismatches,
  };
}
