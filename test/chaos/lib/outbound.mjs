/**
 * Outbound webhooks in the chaos run: four endpoints registered through `POST /v1/endpoints`, each behind its own
 * receiver (lib/receivers.mjs, in a child process: lib/receiver-process.mjs), while the run kills gateways and NATS
 * nodes:
 *  - `healthy`: answers 2xx at once, always;
 *  - `downup`: refuses connections for a long stretch (the outage plan), then comes back;
 *  - `flapping`: phases of 2xx, 500 and no answer at all (a timeout), a few seconds each;
 *  - `fifo`: a FIFO endpoint whose receiver answers 500 to some requests and is down for a shorter stretch.
 * Every endpoint starts from `earliest` and is created before the first webhook, so it owes a delivery for every
 * matching event in the stream. lib/outbound-judge.mjs compares what each receiver recorded with the stream.
 */
import { fileURLToPath } from 'node:url';
import { isRunning, spawnTracked, stopChild } from '../../lib/procs.mjs';
import { ACK_MS, expectedFor, TIMEOUT_MS } from './outbound-judge.mjs';

/** The API key that registers the endpoints: `endpoints: true`, with a grant containing every pattern. */
export const ENDPOINTS_KEY = 'ck_chaos_endpoints_0123456789abcdef';

export const ENDPOINTS = [
  { name: 'healthy', patterns: ['events.>'] },
  { name: 'downup', patterns: ['events.acme.>', 'events.beta.ping'] },
  { name: 'flapping', patterns: ['events.*.invoice.paid', 'events.beta.user.*'] },
  { name: 'fifo', patterns: ['events.acme.order.*'], ordering: 'fifo' },
];

/**
 * The config blocks the run adds: the key, and a retry schedule short enough for the run but longer than any
 * outage plus a crashed hand-out's wait, so no event goes dead (a dead event is a lost one here).
 */
export function outboundConfig(short) {
  // At most 50 delays (the config's limit): 3 s × 30 (about 1.5 minutes) or 5 s × 45 (about 4 minutes).
  const tail = short ? Array.from({ length: 30 }, () => '3s') : Array.from({ length: 45 }, () => '5s');
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
