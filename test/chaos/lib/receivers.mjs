/**
 * Outbound webhook receivers for the chaos run: small node:http servers on 127.0.0.1 (in a process of their own,
 * lib/receiver-process.mjs), behind endpoints registered on the gateways. Each one verifies every request with the
 * official `standardwebhooks` library and records it exactly as received (webhook-id, attempt, cursor, the
 * envelope's id, which gateway process sent it, when it came and what was answered). What it answers is its
 * behaviour's choice: a status, or `hang` (never answer: the gateway's request timeout ends it). `down()` closes
 * the listener and every connection, so the next attempts are refused; `up()` listens again on the same port. */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import standardwebhooks from 'standardwebhooks';
import { cursorSeq } from './judge.mjs';

const { Webhook } = standardwebhooks;

export class ChaosReceiver {
  /**
   * @param {string} name
   * @param {(r: object) => ({status: number, delayMs?: number} | 'hang')} behaviour what to answer to a request
   *   (called once each; the answer goes out after `delayMs`, default 5)
   */
  constructor(name, behaviour = () => ({ status: 200 })) {
    this.name = name;
    this.behaviour = behaviour;
    /** The endpoint's signing secret, set once the endpoint is created. */
    this.secret = '';
    this.requests = [];
    /** webhook-ids answered 2xx. */
    this.okIds = new Set();
    this.port = 0;
    this.isUp = false;
    /** Requests received and not yet answered (or closed), and the most at once. */
    this.open = 0;
    this.maxOpen = 0;
    /** Periods the receiver refused connections: {from, to}. */
    this.downs = [];
    this.sockets = new Set();
    this.hanging = new Set();
  }

  static async start(name, behaviour) {
    const r = new ChaosReceiver(name, behaviour);
    await r.up();
    return r;
  }

  get url() {
    return `http://127.0.0.1:${this.port}/hooks/${this.name}`;
  }

  async up() {
    if (this.isUp) return;
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    server.on('connection', (s) => {
      // Which process sent the requests on this connection: filled in once `ss` has said (see `dump`).
      s.sender = {};
      this.senderOf?.(s.remotePort, this.port).then((pid) => (s.sender.pid = pid));
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = server.address().port;
    this.isUp = true;
    const last = this.downs.at(-1);
    if (last && last.to === undefined) last.to = Date.now();
  }

  /** Refuses connections from now on: the listener is closed and every open connection destroyed. */
  async down() {
    if (!this.isUp) return;
    this.isUp = false;
    this.downs.push({ from: Date.now(), to: undefined });
    const server = this.server;
    this.server = undefined;
    for (const res of this.hanging) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => server.close(() => r()));
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const h = (n) => String(req.headers[n] ?? '');
      let verified = false;
      try {
        new Webhook(this.secret).verify(body, {
          'webhook-id': h('webhook-id'),
          'webhook-timestamp': h('webhook-timestamp'),
          'webhook-signature': h('webhook-signature'),
        });
        verified = true;
      } catch {
        verified = false;
      }
      let envelope = {};
      try {
        envelope = JSON.parse(body.toString('utf8'));
      } catch {
        // recorded as an envelope without id or subject: a wrong request
      }
      const r = {
        id: h('webhook-id'),
        attempt: Number(h('hookstream-attempt')),
        cursorSeq: cursorSeq(h('hookstream-cursor')),
        bodyId: envelope?.id,
        sender: req.socket.sender,
        verified,
        at: Date.now(),
        status: null,
        answeredAt: undefined,
        closedAt: undefined,
      };
      this.requests.push(r);
      this.open++;
      this.maxOpen = Math.max(this.maxOpen, this.open);
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        r.closedAt = Date.now();
        this.open--;
      };
      res.once('close', finish);
      const answer = this.behaviour(r);
      if (answer === 'hang') {
        this.hanging.add(res);
        res.once('close', () => this.hanging.delete(res));
        return;
      }
      // Answered a moment later, so that a request sent before the previous one was answered shows as overlap.
      setTimeout(() => {
        if (done) return;
        r.status = answer.status;
        r.answeredAt = Date.now();
        if (answer.status >= 200 && answer.status < 300) this.okIds.add(r.id);
        res.writeHead(answer.status, { 'content-type': 'text/plain' }).end(answer.status < 300 ? 'ok' : 'no');
        finish();
      }, answer.delayMs ?? 5);
    });
  }

  /** The records, each with `pid`: the sending process, when known. */
  dump() {
    return this.requests.map(({ sender, ...r }) => ({ ...r, pid: sender?.pid }));
  }

  async close() {
    this.behaviour = () => ({ status: 503 });
    if (this.isUp) await this.down();
  }
}

/** Flapping: phases of a few seconds each, in rotation, answering 2xx, 500, or nothing (a timeout). */
export function flapping(random, phaseMs = [2_000, 5_000]) {
  const kinds = ['ok', 'error', 'ok', 'hang'];
  let phase = 0;
  let until = 0;
  return () => {
    const now = Date.now();
    if (now >= until) {
      phase++;
      until = now + phaseMs[0] + random() * (phaseMs[1] - phaseMs[0]);
    }
    const kind = kinds[phase % kinds.length];
    if (kind === 'ok') return { status: 200 };
    if (kind === 'error') return { status: 500 };
    return 'hang';
  };
}

/** Mostly 2xx; a fraction of requests answered 500 (chosen by the seeded `random`). */
export function unreliable(random, failRate) {
  return () => (random() < failRate ? { status: 500 } : { status: 204 });
}

/**
 * The pid of the process holding the loopback TCP connection from local port `port` to `toPort`, from `ss -p`
 * (Linux, iproute2; the kernel filters, so a host with many sockets costs little), or undefined when it cannot
 * tell. Asynchronous: the receiver answers meanwhile.
 */
export function pidOfPort(port, toPort) {
  return new Promise((resolve) => {
    execFile(
      'ss',
      ['-tnpH', 'state', 'established', `( sport = :${port} and dport = :${toPort} )`],
      { timeout: 10_000 },
      (err, stdout) => resolve(err ? undefined : Number(/pid=(\d+)/.exec(stdout)?.[1]) || undefined),
    );
  });
}
