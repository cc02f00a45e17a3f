/**
 * The chaos run's outbound judge: what each receiver recorded (lib/receivers.mjs) against the stream, as the docs
 * promise it (docs/outbound-webhooks.md, "Guarantees"):
 *  - every stored event matching an endpoint got a 2xx from that endpoint's receiver (at least once);
 *  - every request verifies with the `standardwebhooks` library; its webhook-id is the envelope's id of a stored
 *    event that matches the endpoint's patterns, and its cursor names that event's seq;
 *  - a second 2xx for one webhook-id only where the first 2xx could have been lost (the docs allow that): a fault
 *    near it (`faultLosing2xx`), or the gateway's own record of that attempt as failed or unacknowledged
 *    (OutboundChaos.explainTwice); any other is a failure;
 *  - `hookstream-attempt` grows with every answered request for an event (no schedule restarted, one replica at a
 *    time), except around a NATS node kill, where a consumer's new leader may hand out an event with a lower count,
 *    or while another gateway is still attempting it (each then asks for a retry, and the two retries can arrive in
 *    either order);
 *  - FIFO: one request at a time, in stream order, never an event before the previous one got its 2xx; a re-send
 *    repeats only the latest event.
 */
import { natsMatch } from './judge.mjs';

/** The request timeout; a hand-out unanswered for timeout + 5 s goes to another gateway (10 s: less than a freeze). */
export const TIMEOUT_MS = 5_000;
/** How long a receiver's 2xx may wait for the gateway to record it: the gateway's ack timeout. */
export const ACK_MS = 5_000;
/**
 * The least time between two requests for one event that an unacked hand-out explains: the ack wait (timeout + 5 s),
 * less 5 s for the time between the server's hand-out and the request reaching the receiver on a loaded machine.
 */
const REDELIVERY_MIN_MS = TIMEOUT_MS;
/** How late this process may see a request that reached it before a fault (its event loop is busy). */
const RECEIVER_LAG_MS = 250;
/** After a NATS node is back, how long acks may still fail while consumer leaders are elected again. */
const NATS_SETTLE_MS = 10_000;

/** A gateway's JSON log → every failed delivery whose ack (the record of its outcome) NATS did not confirm. */
export function ackFailuresIn(gateway, logText) {
  const out = [];
  for (const line of logText.split('\n')) {
    if (!line.includes('delivery failed') || !line.includes('ack')) continue;
    try {
      const o = JSON.parse(line);
      if (o.msg !== 'delivery failed' || !/\back\b/.test(String(o.err))) continue;
      // The ack's subject, when the error names it, says which delivery: $JS.ACK.<stream>.<consumer>.<count>.<seq>…
      const m = /\$JS\.ACK\.[^.]+\.[^.]+\.(\d+)\.(\d+)\./.exec(String(o.err));
      out.push({
        gateway,
        queue: o.queue,
        at: Date.parse(o.time),
        attempt: m ? Number(m[1]) : undefined,
        seq: m ? Number(m[2]) : undefined,
      });
    } catch {
      // not a JSON line
    }
  }
  return out;
}

/** The stored events an endpoint owes a delivery for (it starts from `earliest`). */
export function expectedFor(ep, stored) {
  return stored.filter((m) => ep.patterns.some((p) => natsMatch(p, m.subject)));
}

/**
 * A fault that may have lost the 2xx answered to `request` (the event came `again` later): the request was sent
 * within the gateway's ack timeout before that gateway was killed or frozen (only requests sent before the fault
 * can be the frozen or killed one's; which gateway sent it is known from the connection's owner); or its 2xx was
 * answered from the ack timeout before a NATS node kill until the consumers' leaders were elected again; or a NATS
 * node was killed between that 2xx and the event coming again.
 */
export function faultLosing2xx(faults, request, again) {
  return faults.find((f) => {
    if (f.at === undefined) return false;
    if (f.kind === 'gateway-kill' || f.kind === 'gateway-pause') {
      // Sent by that gateway, when the receiver could tell (`from`); else by its time alone.
      if (request.from !== undefined && request.from !== f.process) return false;
      return request.at >= f.at - ACK_MS && request.at <= f.at + RECEIVER_LAG_MS;
    }
    // Around the NATS fault, or the node killed between the 2xx and the event coming again: a consumer's new
    // leader need not have the ack its dead leader confirmed. Either way the server hands the event out again only
    // once its ack wait has run out, so a second request sooner than that is not explained by NATS.
    if (again.at - request.at < REDELIVERY_MIN_MS) return false;
    return (
      (request.answeredAt >= f.at - ACK_MS && request.answeredAt <= (f.doneAt ?? f.at) + NATS_SETTLE_MS) ||
      (f.at >= request.answeredAt && f.at <= again.at)
    );
  });
}

/** A NATS node kill or leader restart from ACK_MS before `at` until its consumers' leaders were elected again. */
function natsFaultAround(faults, at) {
  return faults.find(
    (f) =>
      f.at !== undefined &&
      (f.kind === 'nats-kill' || f.kind === 'leader-restart') &&
      at >= f.at - ACK_MS &&
      at <= (f.doneAt ?? f.at) + NATS_SETTLE_MS,
  );
}

/**
 * Whether two of an event's requests, from different gateways, were open at once, the later one sent from ACK_MS
 * before the NATS fault `f` on (its consumer's new leader handed the event out while the old hand-out was still
 * being attempted).
 */
function handedOutTwiceAt(requests, f) {
  for (let j = 1; j < requests.length; j++) {
    const y = requests[j];
    if (y.at < f.at - ACK_MS || y.at > (f.doneAt ?? f.at) + NATS_SETTLE_MS) continue;
    for (let i = 0; i < j; i++) {
      const x = requests[i];
      if (x.from !== undefined && y.from !== undefined && x.from !== y.from && y.at < x.end) return true;
    }
  }
  return false;
}

/**
 * Judges one endpoint's receiver against the stream (see the file's comment). `unacked(seq, attempt)`: whether a
 * gateway logged a failed ack for that delivery (from `ackFailuresIn`).
 */
export function judgeEndpoint(ep, rx, stored, faults, unacked = () => false) {
  const expected = expectedFor(ep, stored);
  const seqOf = new Map(expected.map((m) => [m.eventId, m.seq]));
  const v = {
    expected: expected.length,
    requests: rx.requests.length,
    delivered: 0,
    lost: 0,
    lostIds: [],
    unverified: 0,
    wrong: 0,
    wrongExamples: [],
    twice: 0,
    twiceExcused: 0,
    /** Every second 2xx not excused by a fault; `explainTwice` moves those the gateway logged as failed. */
    twiceList: [],
    twiceLate: 0,
    twiceUnacked: 0,
    excusedBy: {},
    excusedExamples: [],
    attemptRegressions: 0,
    attemptRegressionsExcused: 0,
    attemptExamples: [],
    orderViolations: 0,
    orderExamples: [],
  };
  const ok = new Map();
  const lastAttempt = new Map();
  const lastAnsweredAt = new Map();
  /** Per event, every request so far (answered or not): when it was sent, when it closed, which gateway sent it. */
  const sent = new Map();
  for (const r of rx.requests) {
    if (!r.verified) v.unverified++;
    const seq = seqOf.get(r.id);
    // Not a stored event matching the endpoint (seq undefined), or its id or cursor disagree with the stream's.
    if (seq === undefined || r.bodyId !== r.id || r.cursorSeq !== seq) {
      v.wrong++;
      if (v.wrongExamples.length < 5) v.wrongExamples.push({ id: r.id, bodyId: r.bodyId, cursorSeq: r.cursorSeq, seq });
    }
    // Attempt numbers, over answered requests only: one the gateway gave up on before this process read it (this
    // process lags on a loaded machine) is read out of order. Around a NATS node kill, a consumer leader elected
    // again may hand out an event with the count its replicas had, lower than the one the dead leader last used.
    const answered = r.status !== null;
    if (answered && lastAttempt.has(r.id) && r.attempt <= lastAttempt.get(r.id)) {
      // A new leader hands the event out no sooner than its election, seconds after the previous request; or at
      // once after a graceful hand-over, when the gateway's ack of the previous delivery failed (its log says so).
      // Or the fault's new leader handed the event out while another gateway was still attempting it: each of the
      // two then asks for a retry when its attempt fails, the queue hands the event out once for each, and the two
      // hand-outs go to different gateways whose requests can reach the receiver in either order.
      const around = natsFaultAround(faults, r.at);
      const f =
        r.at - lastAnsweredAt.get(r.id) >= 1_000 ||
        unacked(seq, lastAttempt.get(r.id)) ||
        (around && handedOutTwiceAt(sent.get(r.id) ?? [], around))
          ? around
          : undefined;
      if (f) {
        v.attemptRegressionsExcused++;
        v.excusedBy[faults.indexOf(f)] = (v.excusedBy[faults.indexOf(f)] ?? 0) + 1;
      } else v.attemptRegressions++;
      if (v.attemptExamples.length < 5)
        v.attemptExamples.push({
          id: r.id,
          seq,
          attempt: r.attempt,
          after: lastAttempt.get(r.id),
          at: r.at,
          from: r.from,
        });
    }
    let mine = sent.get(r.id);
    if (!mine) sent.set(r.id, (mine = []));
    mine.push({ at: r.at, end: r.answeredAt ?? r.closedAt ?? Infinity, from: r.from });
    if (answered) {
      lastAttempt.set(r.id, Math.max(r.attempt, lastAttempt.get(r.id) ?? 0));
      lastAnsweredAt.set(r.id, r.at);
    }
    if (r.status >= 200 && r.status < 300) {
      const first = ok.get(r.id);
      if (!first) ok.set(r.id, r);
      else {
        const f = faultLosing2xx(faults, first, r);
        if (f) {
          v.twiceExcused++;
          v.excusedBy[faults.indexOf(f)] = (v.excusedBy[faults.indexOf(f)] ?? 0) + 1;
          // How far from the fault the first 2xx was answered, and which attempt came again (for the summary).
          if (v.excusedExamples.length < 20)
            v.excusedExamples.push({
              id: r.id,
              seq,
              fault: faults.indexOf(f),
              msAfterFault: first.answeredAt - f.at,
              attempt: r.attempt,
            });
        } else {
          v.twice++;
          v.twiceList.push({
            id: r.id,
            seq,
            firstAttempt: first.attempt,
            firstAnsweredAt: first.answeredAt,
            firstFrom: first.from,
            againAt: r.at,
            againFrom: r.from,
            attempt: r.attempt,
          });
        }
      }
    }
  }
  for (const m of expected) {
    if (ok.has(m.eventId)) v.delivered++;
    else {
      v.lost++;
      if (v.lostIds.length < 5) v.lostIds.push(`${m.eventId}@${m.seq}`);
    }
  }
  // Answered requests only, for the reason given for attempt numbers above.
  if (ep.ordering === 'fifo')
    judgeFifo(
      rx.requests.filter((r) => r.status !== null),
      expected,
      seqOf,
      v,
    );
  return v;
}

/**
 * FIFO, from the receiver's answered arrivals: each request comes after the previous one was answered; a new
 * event only once the previous event got its 2xx, and never past a matching event that was not sent yet; an older
 * event never after a newer one.
 */
function judgeFifo(requests, expected, seqOf, v) {
  const order = expected.map((m) => m.seq);
  const index = new Map(order.map((s, i) => [s, i]));
  const violation = (what, r) => {
    v.orderViolations++;
    if (v.orderExamples.length < 5) v.orderExamples.push({ what, id: r.id, seq: seqOf.get(r.id), at: r.at });
  };
  let head = -1; // index in `order` of the newest event sent so far
  let headOkAt = null; // when it got its 2xx
  let prev = null;
  for (const r of requests) {
    const seq = seqOf.get(r.id);
    if (seq === undefined) continue; // counted as wrong
    const i = index.get(seq);
    const prevEnd = prev ? (prev.answeredAt ?? prev.closedAt) : undefined;
    if (prev && (prevEnd === undefined || prevEnd > r.at)) violation('sent while the previous request was open', r);
    if (i < head) violation('an older event after a newer one', r);
    else if (i > head) {
      if (head >= 0 && (headOkAt === null || headOkAt > r.at))
        violation('sent before the previous event got its 2xx', r);
      if (i > head + 1) violation(`skipped ${i - head - 1} event(s) not sent yet`, r);
      head = i;
      headOkAt = null;
    }
    if (i === head && r.status >= 200 && r.status < 300 && headOkAt === null) headOkAt = r.answeredAt;
    prev = r;
  }
}
