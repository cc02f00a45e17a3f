/**
 * The chaos run's judge: what the provider was told (2xx, seq) against what the stream holds, what each
 * client received against what it should have, and what each outbound endpoint's receiver got against the
 * stream. Every broken invariant is reported through `fail`; the counts come back for the report.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ackFailuresIn, judgeEndpoint } from './outbound-judge.mjs';
import { ENDPOINTS } from './outbound.mjs';
import { judge } from './judge.mjs';

/** Every 2xx stored exactly once at the seq it named; no 2xx for an event that is not in the stream. */
export function checkIngest(producer, stored, fail) {
  const byMsgId = new Map();
  for (const m of stored) byMsgId.set(m.msgId, [...(byMsgId.get(m.msgId) ?? []), m.seq]);
  let ackedMissing = 0;
  let storedTwice = 0;
  let seqMismatch = 0;
  let storedUnacked = 0;
  const acked = [...producer.deliveries.values()].filter((r) => r.ackedAt !== undefined);
  for (const r of acked) {
    const seqs = byMsgId.get(`${r.source}:${r.id}`) ?? [];
    if (seqs.length === 0) {
      ackedMissing++;
      if (ackedMissing <= 5) fail(`2xx (${r.status} ${r.answer}) for ${r.source}:${r.id}, which is not in the stream`);
    }
    if (r.seq !== undefined && seqs.length && !seqs.includes(r.seq)) {
      seqMismatch++;
      if (seqMismatch <= 5) fail(`${r.id}: the 2xx named seq ${r.seq}, the stream has it at ${seqs.join(',')}`);
    }
  }
  for (const [msgId, seqs] of byMsgId) {
    if (seqs.length > 1) {
      storedTwice += seqs.length - 1;
      if (storedTwice <= 5) fail(`${msgId} is stored ${seqs.length} times (seqs ${seqs.join(',')})`);
    }
    const id = msgId?.replace(/^[^:]+:/, '');
    if (producer.deliveries.get(id)?.ackedAt === undefined) storedUnacked++;
  }
  if (ackedMissing > 5) fail(`... ${ackedMissing} acknowledged webhooks missing from the stream in all`);
  if (storedTwice > 5) fail(`... ${storedTwice} extra copies in the stream in all`);
  return { acked, ackedMissing, storedTwice, storedUnacked };
}

/** Every client got every matching stored event after its start, exactly once, in order, without a gap. */
export function checkClients(subscribers, stored, fail) {
  const verdicts = subscribers.map((s) => ({ s, v: judge(s, stored) }));
  let clientLost = 0;
  let clientDup = 0;
  let delivered = 0;
  for (const { s, v } of verdicts) {
    delivered += v.delivered;
    clientLost += v.lost;
    clientDup += v.duplicated;
    if (s.startCursor === undefined) fail(`${s.name} never got a subscription`);
    if (v.lost) fail(`${s.name} (${s.patterns}) missed ${v.lost} of ${v.expected} events, e.g. seqs ${v.lostSeqs}`);
    if (v.duplicated) fail(`${s.name} got ${v.duplicated} events twice, e.g. seqs ${v.dupSeqs}`);
    if (v.outOfOrder) fail(`${s.name}: ${v.outOfOrder} deliveries out of stream order`);
    if (v.wrongEvent || v.unexpected || v.subjectMismatches) {
      fail(
        `${s.name}: ${v.wrongEvent} wrong events, ${v.unexpected} unexpected seqs, ${v.subjectMismatches} outside its patterns`,
      );
    }
    if (v.gaps) fail(`${s.name} got ${v.gaps} gap notice(s), though retention removed nothing`);
  }
  return { verdicts, clientLost, clientDup, delivered };
}

/**
 * Outbound: every endpoint's receiver against the stream (lib/outbound.mjs says what is checked). Writes
 * each receiver's requests to outbound-<name>.jsonl in `dir` and reads the gateways' logs for failed acks.
 */
export async function checkOutbound({ outbound, gateways, dir, stored, faults, drainedAt, fail }) {
  const endpointStates = await outbound.states(gateways[0].url);
  const records = await outbound.collect();
  for (const [name, rx] of Object.entries(records)) {
    writeFileSync(join(dir, `outbound-${name}.jsonl`), rx.requests.map((r) => `${JSON.stringify(r)}\n`).join(''));
  }
  const ackFailures = gateways.flatMap((g) =>
    ackFailuresIn(g.name, readFileSync(join(dir, `gateway-${g.name}.log`), 'utf8')),
  );
  const outboundVerdicts = ENDPOINTS.map((ep) => {
    const id = outbound.endpoints.get(ep.name);
    const unacked = (seq, attempt) => ackFailures.some((f) => f.queue === id && f.seq === seq && f.attempt === attempt);
    return { ep, v: judgeEndpoint(ep, records[ep.name], stored, faults, unacked) };
  });
  for (const { ep, v } of outboundVerdicts)
    if (v.twice) await outbound.explainTwice(gateways[0].url, ep.name, v, ackFailures);
  if (drainedAt === null) fail('outbound: not every endpoint had every matching event within the drain period');
  for (const { ep, v } of outboundVerdicts) {
    const state = endpointStates[ep.name];
    if (v.lost)
      fail(
        `endpoint ${ep.name}: ${v.lost} of ${v.expected} matching events never got a 2xx (e.g. ${v.lostIds.join(', ')}); ` +
          `gateway says pending ${state?.pending}, dead ${state?.dead}`,
      );
    if (v.unverified) fail(`endpoint ${ep.name}: ${v.unverified} requests do not verify with standardwebhooks`);
    if (v.wrong)
      fail(
        `endpoint ${ep.name}: ${v.wrong} requests with a wrong id, cursor or subject, e.g. ${JSON.stringify(v.wrongExamples)}`,
      );
    if (v.twice)
      fail(
        `endpoint ${ep.name}: ${v.twice} webhook-ids got a 2xx twice though no fault could have lost the first and the gateway logged it delivered, e.g. ${JSON.stringify(v.twiceList.slice(0, 5))}`,
      );
    if (v.attemptRegressions)
      fail(
        `endpoint ${ep.name}: ${v.attemptRegressions} requests did not raise the attempt number, e.g. ${JSON.stringify(v.attemptExamples)}`,
      );
    if (v.orderViolations)
      fail(
        `endpoint ${ep.name} (fifo): ${v.orderViolations} order violations, e.g. ${JSON.stringify(v.orderExamples)}`,
      );
  }
  return { endpointStates, records, outboundVerdicts };
}
