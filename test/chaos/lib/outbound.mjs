/**
 * Outbound webhooks in the chaos run: four endpoints registered through `POST /v1/endpoints`, each behind its own
 * receiver (lib/receivers.mjs, in a child process: lib/receiver-process.mjs), while the run kills gateways and NATS
 * nodes:
 *  - `healthy`: answers 2xx at once, always;
 *  - `downup`: refuses connections for a long stretch (the outage plan), then comes back;
 *  - `flapping`: phases of 2xx, 500 and no answer at all (a timeout), a few seconds each;
 *  - `fifo`: a FIFO endpoint whose receiver answers 500 to some requests and is down for a shorter stretch.
 * Every endpoint starts from `earliest` and is created before the first webhook, so it owes a delivery for every
 * matching event in the stream. The judge compares what each receiver recorded with the stream, as the docs
 * promise it (docs/outbound-webhooks.md, "Guarantees"):
 *  - every stored event matching an endpoint got a 2xx from that endpoint's receiver (at least once);
 *  - every request verifies with the `standardwebhooks` library; its webhook-id is the envelope's id of a stored
 *    event that matches the endpoint's patterns, and its cursor names that event's seq;
 *  - a second 2xx for one webhook-id only where the first 2xx could have been lost (the docs allow that): its
 *    request sent just before a gateway was killed or frozen, or answered around a NATS node kill (the gateway's
 *    ack never recorded); any other is a failure;
 *  - `hookstream-attempt` grows with every answered request for an event (no schedule restarted, one replica at a
 *    time), except around a NATS node kill, where a consumer's new leader may hand out an event with a lower count;
 *  - FIFO: one request at a time, in stream order, never an event before the previous one got its 2xx; a re-send
 *    repeats only the latest event.
 */
import { fileURLToPath } from 'node:url';
import { isRunning, spawnTracked, stopChild } from '../../lib/procs.mjs';
import { natsMatch } from './subscribers.mjs';

/** The API key that registers the endpoints: `endpoints: true`, with a grant containing every pattern. */
export const ENDPOINTS_KEY = 'ck_chaos_endpoints_0123456789abcdef';

export const ENDPOINTS = [
  { name: 'healthy', patterns: ['events.>'] },
  { name: 'downup', patterns: ['events.acme.>', 'events.beta.ping'] },
  { name: 'flapping', patterns: ['events.*.invoice.paid', 'events.beta.user.*'] },
  { name: 'fifo', patterns: ['events.acme.order.*'], ordering: 'fifo' },
];

/** The request timeout; a hand-out unanswered for timeout + 5 s goes to another gateway (10 s: less than a freeze). */
const TIMEOUT_MS = 5_000;
/** How long a receiver's 2xx may wait for the gateway to record it: the gateway's ack timeout. */
const ACK_MS = 5_000;
/**
 * The least time between two requests for one event that an unacked hand-out explains: the ack wait (timeout + 5 s),
 * less 5 s for the time between the server's hand-out and the request reaching the receiver on a loaded machine.
 */
const REDELIVERY_MIN_MS = TIMEOUT_MS;
/** How late this process may see a request that reached it before a fault (its event loop is busy). */
const RECEIVER_LAG_MS = 250;
/** After a NATS node is back, how long acks may still fail while consumer leaders are elected again. */
const NATS_SETTLE_MS = 10_000;

/**
 * The config blocks the run adds: the key, and a retry schedule short enough for the run but longer than any
 * outage plus a crashed hand-out's wait, so no event goes dead (a dead event is a lost one here).
 */
export function outboundConfig(short) {
  const tail = Array.from({ length: short ? 30 : 80 }, () => '3s');
  return {
    apiKey: { id: 'chaos-endpoints', key: ENDPOINTS_KEY, subscribe: ['events.>'], endpoints: true },
    delivery: {
      timeout: `${TIMEOUT_MS}ms`,
      retrySchedule: ['200ms', '500ms', '1s', '2s', ...tail],
      jitter: 0.2,
      allowPrivateNetworks: true,
    },
  };
}

/**
 * Receiver outages: [at ms into the run, receiver, how long it refuses connections]. Short: `downup` is down
 * through the NATS kill, the gateway kill and the freeze; `fifo` through the leader restart. Full: `downup` down
 * 2 minutes of every 3, `fifo` 30 s of every 3 minutes, each across several faults.
 */
export function outagePlan(short, runMs) {
  if (short)
    return [
      [3_000, 'downup', 32_000],
      [38_000, 'fifo', 10_000],
    ];
  const plan = [];
  for (let at = 20_000; at + 120_000 <= runMs - 30_000; at += 180_000) {
    plan.push([at, 'downup', 120_000]);
    plan.push([at + 130_000, 'fifo', 30_000]);
  }
  return plan;
}

export class OutboundChaos {
  constructor(seed, short) {
    this.seed = seed;
    this.short = short;
    this.urls = {};
    this.endpoints = new Map();
    this.calls = new Map();
    this.nextCall = 0;
    /** What each receiver recorded, `{name: {requests, downs}}`, once `collect()` ran. */
    this.records = {};
  }

  /** Asks the receivers' process; resolves with its answer. */
  call(cmd, args = {}) {
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.child.send({ id, cmd, ...args });
    });
  }

  /**
   * Starts the receivers in their own process (lib/receiver-process.mjs). `pids()`: {`<gateway name>/<pid>`: pid}
   * of the gateways now, sent to it every 200 ms, so that it can tell which gateway sent each request.
   */
  async startReceivers(pids) {
    this.child = spawnTracked(process.execPath, [fileURLToPath(new URL('./receiver-process.mjs', import.meta.url))], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', ({ id, result, error }) => {
      const call = this.calls.get(id);
      this.calls.delete(id);
      if (error) call?.reject(new Error(`receivers: ${error}`));
      else call?.resolve(result);
    });
    this.child.on('exit', (code) => {
      for (const call of this.calls.values()) call.reject(new Error(`the receivers' process exited (${code})`));
      this.calls.clear();
    });
    this.urls = await this.call('start', { names: ENDPOINTS.map((ep) => ep.name), seed: this.seed });
    const sendPids = () => this.call('pids', { pids: pids() }).catch(() => undefined);
    await sendPids();
    this.pidTimer = setInterval(sendPids, 200);
  }

  /** Registers every endpoint on `base` (from `earliest`); the receivers verify with the secrets it returns. */
  async createEndpoints(base) {
    for (const ep of ENDPOINTS) {
      const body = {
        url: this.urls[ep.name],
        patterns: ep.patterns,
        from: 'earliest',
        description: `chaos ${ep.name}`,
      };
      if (ep.ordering) body.ordering = ep.ordering;
      if (ep.ordering === 'fifo') body.maxInFlight = 1;
      const res = await fetch(`${base}/v1/endpoints`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ENDPOINTS_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const answer = await res.json().catch(() => ({}));
      if (res.status !== 201) throw new Error(`creating endpoint ${ep.name}: ${res.status} ${JSON.stringify(answer)}`);
      await this.call('secret', { name: ep.name, secret: answer.secret });
      this.endpoints.set(ep.name, answer.id);
    }
  }

  /** Runs the outage plan from `t0`; resolves when every receiver is up again. */
  async runOutages(t0, runMs, log) {
    await Promise.all(
      outagePlan(this.short, runMs).map(async ([at, name, ms]) => {
        await sleep(Math.max(0, t0 + at - Date.now()));
        log(`receiver ${name} down (connections refused) for ${ms / 1000} s`);
        await this.call('down', { name });
        await sleep(ms);
        await this.call('up', { name });
        log(`receiver ${name} up`);
      }),
    );
  }

  /** webhook-ids answered 2xx so far, per receiver (for the progress line). */
  counts() {
    return this.call('counts').catch(() => ({}));
  }

  /** Waits until every receiver has a 2xx for every stored event its endpoint matches: when that was, or null. */
  async drain(stored, timeoutMs) {
    const until = Date.now() + timeoutMs;
    const ids = Object.fromEntries(ENDPOINTS.map((ep) => [ep.name, expectedFor(ep, stored).map((m) => m.eventId)]));
    await this.call('want', { ids });
    for (;;) {
      if ((await this.call('missing')) === 0) return Date.now();
      if (Date.now() >= until) return null;
      await sleep(250);
    }
  }

  /** Fetches what every receiver recorded into `records`. */
  async collect() {
    this.records = await this.call('dump');
    return this.records;
  }

  /**
   * A second 2xx is also what the docs promise when the gateway never took the first for one: its answer came
   * after the request timeout by the gateway's clock (a starved process), or the connection broke before it was
   * read. The gateway's attempt log says so (an attempt with that number and an error or a non-2xx status): those
   * leave `twice` for `twiceLate`. Or the gateway took the 2xx but could not record it: its log has a failed ack
   * on that endpoint's queue just after (`ackFailures`, from `ackFailuresIn`): those go to `twiceUnacked`.
   */
  async explainTwice(base, name, v, ackFailures = []) {
    const id = this.endpoints.get(name);
    const unexplained = [];
    const deadline = Date.now() + 30_000;
    for (const d of v.twiceList) {
      let logged;
      // Each look-up reads the endpoint's whole attempt log: a few, within a budget; the rest stay unexplained.
      if (v.twiceList.length <= 50 && Date.now() < deadline) {
        try {
          const res = await fetch(`${base}/v1/endpoints/${id}/attempts?limit=100&eventId=${encodeURIComponent(d.id)}`, {
            headers: { authorization: `Bearer ${ENDPOINTS_KEY}` },
            signal: AbortSignal.timeout(10_000),
          });
          logged = (await res.json()).attempts?.find((a) => a.attempt === d.firstAttempt);
        } catch {
          logged = undefined;
        }
      }
      d.gatewayLogged = logged ? { status: logged.status, error: logged.error, durationMs: logged.durationMs } : null;
      // Or the gateway that sent it logged that it could not record an outcome (its ack to NATS failed) soon after.
      const gateway = d.firstFrom?.split('/')[0];
      const unacked = ackFailures.some(
        (f) =>
          f.queue === id &&
          (gateway === undefined || f.gateway === gateway) &&
          (f.seq !== undefined
            ? f.seq === d.seq && f.attempt === d.firstAttempt
            : f.at >= d.firstAnsweredAt - 1_000 && f.at <= d.firstAnsweredAt + ACK_MS + 10_000),
      );
      if (logged && (logged.error !== null || !(logged.status >= 200 && logged.status < 300))) v.twiceLate++;
      else if (unacked) v.twiceUnacked++;
      else unexplained.push(d);
    }
    v.twiceList = unexplained;
    v.twice = unexplained.length;
  }

  /** The endpoint's state as its gateway reports it (pending, dead), for the report. */
  async states(base) {
    const out = {};
    for (const [name, id] of this.endpoints) {
      try {
        const res = await fetch(`${base}/v1/endpoints/${id}`, {
          headers: { authorization: `Bearer ${ENDPOINTS_KEY}` },
          signal: AbortSignal.timeout(5_000),
        });
        out[name] = (await res.json()).state ?? {};
      } catch (err) {
        out[name] = { error: String(err?.message ?? err) };
      }
    }
    return out;
  }

  async close() {
    clearInterval(this.pidTimer);
    if (!this.child || !isRunning(this.child)) return;
    await this.call('close').catch(() => undefined);
    await stopChild(this.child, 'SIGTERM', 5_000);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

function expectedFor(ep, stored) {
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

/** Judges one endpoint's receiver against the stream (see the file's comment). */
export function judgeEndpoint(ep, rx, stored, faults) {
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
      // A new leader hands the event out no sooner than its election, seconds after the previous request.
      const f = r.at - lastAnsweredAt.get(r.id) >= 1_000 ? natsFaultAround(faults, r.at) : undefined;
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
