/**
 * A webhook provider: signs Standard Webhooks deliveries with the official `standardwebhooks` library and
 * POSTs them at a steady rate, retrying every non-2xx answer and every network error or timeout with
 * exponential backoff and the SAME delivery id (re-signed with a fresh timestamp, as providers do), against
 * the gateways in turn (a load balancer's view). Every attempt and its answer is recorded.
 */
import { randomUUID } from 'node:crypto';
import standardwebhooks from 'standardwebhooks';

const { Webhook } = standardwebhooks;

export const SOURCES = {
  acme: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  beta: 'whsec_Y2hhb3MtYmV0YS1zZWNyZXQtMDEyMzQ1Njc4OQ==',
};

/** The config-file `sources` block matching SOURCES. */
export const sourcesConfig = () =>
  Object.entries(SOURCES).map(([name, secret]) => ({ name, verifier: 'standard-webhooks', secrets: [secret] }));

/** Event kinds in rotation: [source, type]; subjects become events.<source>.<type tokens>. */
export const KINDS = [
  ['acme', 'order.created'],
  ['acme', 'order.paid'],
  ['acme', 'invoice.paid'],
  ['acme', 'user.signup'],
  ['beta', 'invoice.paid'],
  ['beta', 'user.login'],
  ['beta', 'ping'],
];

const signers = Object.fromEntries(Object.entries(SOURCES).map(([name, secret]) => [name, new Webhook(secret)]));

export class Producer {
  /**
   * @param {{urls: () => string[], rate: number, timeoutMs?: number, maxInFlight?: number,
   *          backoff?: {baseMs: number, capMs: number}}} opts
   */
  constructor(opts) {
    this.opts = { timeoutMs: 5_000, maxInFlight: 1_000, backoff: { baseMs: 200, capMs: 4_000 }, ...opts };
    /** id → record */
    this.deliveries = new Map();
    /** Every 2xx: {at, startedAt} — when it came, and when the attempt that got it was sent. */
    this.acks = [];
    this.attempts = 0;
    this.lastAckAt = 0;
    this.statusCounts = {};
    this.inFlight = 0;
    this.created = 0;
    this.stopping = false;
    this.aborted = false;
    this.turn = 0;
    this.tasks = new Set();
  }

  start() {
    this.startedAt = Date.now();
    this.loop = this.run();
  }

  async run() {
    while (!this.stopping) {
      const due = Math.floor(((Date.now() - this.startedAt) / 1000) * this.opts.rate) - this.created;
      if (due <= 0 || this.inFlight >= this.opts.maxInFlight) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      for (let k = 0; k < due && this.inFlight < this.opts.maxInFlight; k++) this.spawnDelivery();
    }
  }

  spawnDelivery() {
    const n = this.created++;
    const [source, type] = KINDS[n % KINDS.length];
    const rec = {
      id: `msg_${randomUUID()}`,
      n,
      source,
      type,
      createdAt: Date.now(),
      attempts: [],
      ackedAt: undefined,
      status: undefined,
      seq: undefined,
    };
    this.deliveries.set(rec.id, rec);
    this.inFlight++;
    const task = this.deliver(rec).finally(() => {
      this.inFlight--;
      this.tasks.delete(task);
    });
    this.tasks.add(task);
  }

  async deliver(rec) {
    const body = JSON.stringify({ type: rec.type, data: { n: rec.n, createdAt: rec.createdAt } });
    for (let attempt = 0; !this.aborted; attempt++) {
      const urls = this.opts.urls();
      const url = urls[this.turn++ % urls.length];
      const startedAt = Date.now();
      const date = new Date();
      const headers = {
        'content-type': 'application/json',
        'webhook-id': rec.id,
        'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
        'webhook-signature': signers[rec.source].sign(rec.id, date, body),
      };
      let status;
      let answer;
      this.attempts++;
      try {
        const res = await fetch(`${url}/webhooks/${rec.source}`, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
        status = res.status;
        const text = await res.text();
        try {
          answer = JSON.parse(text);
        } catch {
          answer = text;
        }
      } catch (err) {
        status = err?.name === 'TimeoutError' ? 'timeout' : 'neterr';
      }
      this.statusCounts[status] = (this.statusCounts[status] ?? 0) + 1;
      rec.attempts.push({ url, startedAt, status, ms: Date.now() - startedAt });
      if (typeof status === 'number' && status >= 200 && status < 300) {
        rec.ackedAt = Date.now();
        rec.status = status;
        rec.seq = typeof answer?.seq === 'number' ? answer.seq : undefined;
        rec.answer = status === 202 ? 'accepted' : (answer?.status ?? 'ok');
        this.acks.push({ at: rec.ackedAt, startedAt });
        this.lastAckAt = rec.ackedAt;
        return;
      }
      if (typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429) {
        // A refusal of a correctly signed webhook is a bug in itself; keep retrying like a provider would,
        // but remember it for the report.
        rec.refused = (rec.refused ?? 0) + 1;
      }
      const ceiling = Math.min(this.opts.backoff.capMs, this.opts.backoff.baseMs * 2 ** attempt);
      await new Promise((r) => setTimeout(r, ceiling / 2 + (Math.random() * ceiling) / 2));
    }
  }

  /** Stops creating deliveries; the ones in flight keep retrying until acknowledged or `deadlineMs` passes. */
  async finish(deadlineMs) {
    this.stopping = true;
    await this.loop;
    this.stoppedAt = Date.now();
    const deadline = Date.now() + deadlineMs;
    while (this.tasks.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    this.aborted = true;
    await Promise.allSettled([...this.tasks]);
  }

  get acknowledged() {
    let n = 0;
    for (const r of this.deliveries.values()) if (r.ackedAt !== undefined) n++;
    return n;
  }
}
