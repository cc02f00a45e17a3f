/**
 * One consumer's worth of the live tail: a callback subscription on an inbox, our own pulls kept ahead of the
 * events, and every way the feed can go wrong turned into one end (`ended`), after which the tail creates a new
 * consumer from its last sequence + 1.
 *
 * - Pulls: one of `batch` messages whenever fewer than half a batch are asked for and not yet received, so while
 *   events flow there is always a pull on the server with room (statuses of expired pulls give back what they
 *   did not deliver, and the next pull goes out at once).
 * - Heartbeats: each pull asks the server for an idle heartbeat. While a pull waits with nothing to deliver the
 *   server sends one every `heartbeatMs`. A tick that finds neither a message nor a heartbeat since the one
 *   before sends a new pull at once (the budget we count is not on the server: a pull it ended without a
 *   status); a feed still quiet two ticks later has lost its consumer (the node holding it died, the server
 *   restarted under it), and ends. A tick does not judge in the timers phase, where after a
 *   long turn it runs before the socket is read: it judges in the check phase of the same loop iteration, after
 *   the poll phase has read (and the client has parsed and handed to the callback) whatever reached the socket
 *   meanwhile. Quiet judgements in a row then mean intervals in which nothing reached the socket, however
 *   busy the process was; judging in the timers phase, a quiet tick followed by one turn longer than the interval
 *   ended a feed whose heartbeats were waiting to be read.
 * - A jump in the delivery sequence (a message lost on the way), any 409 (consumer deleted, leader change),
 *   404, 503 (no consumer answers) or other unexpected status, or a failed subscription ends the feed.
 *
 * Each message's reply subject is read by AckReply (sequences and timestamp, no JsMsg, no per-message promise);
 * `onEvent` is called synchronously from the subscription callback.
 */
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { AckReply } from './jetstream-ack-reply.js';
import { pullStatus, sendPull } from './jetstream-pull.js';
import { describeError } from './jetstream-util.js';

export interface FeedOptions {
  nc: NatsConnection;
  apiPrefix: string;
  stream: string;
  consumer: string;
  batch: number;
  expiresMs: number;
  heartbeatMs: number;
  /** Whether the connection is up: missed heartbeats are not judged while it is down (a reconnect recreates). */
  connected(): boolean;
  /** One message, in delivery order: its stream sequence, subject, payload, reply subject and timestamp's end. */
  onEvent(seq: number, subject: string, data: Uint8Array, reply: string, tsEnd: number): void;
}

/** Why a feed ended; `fault` ends are retried with backoff when they repeat without progress. */
export interface FeedEnd {
  /** A short category (`delivery gap`, `heartbeats missed`, `pull status 409` …), used in the log message. */
  reason: string;
  fault: boolean;
  detail?: string;
}

export class TailFeed {
  /** Resolves once, when the feed ended (see end()). */
  readonly ended: Promise<FeedEnd>;
  /** Messages received so far (the stall watchdog compares it between its looks). */
  received = 0;
  private resolveEnded!: (end: FeedEnd) => void;
  private done = false;
  private sub?: Subscription;
  private inbox = '';
  private ticker?: NodeJS.Timeout;
  /** A tick's judgement is queued (see judge()). */
  private judging = false;
  /** Messages asked for by pulls and not received yet (as far as the statuses tell). */
  private requested = 0;
  private dseq = 0;
  /** Something (message or status) came since the last tick. */
  private heard = true;
  private quietTicks = 0;
  /** When a tick last found that something had come (tick precision). */
  private heardAt = Date.now();
  private readonly ack: AckReply;

  constructor(private readonly o: FeedOptions) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.ack = new AckReply(`$JS.ACK.${o.stream}.${o.consumer}.`);
  }

  /** Subscribes and sends the first pull; throws when the connection cannot (the caller retries). */
  start(): void {
    this.inbox = createInbox();
    this.sub = this.o.nc.subscribe(this.inbox, { callback: (err, msg) => this.onMessage(err, msg) });
    this.ticker = setInterval(() => this.tick(), this.o.heartbeatMs);
    this.ticker.unref();
    this.topUp();
  }

  /** Ends the feed (idempotent): no message reaches onEvent after this. */
  end(reason: string, fault = false, detail?: string): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.ticker);
    try {
      this.sub?.unsubscribe();
    } catch {
      // The connection is closed: the subscription is gone with it.
    }
    this.resolveEnded({ reason, fault, detail });
  }

  /** For the log when a feed ends: messages it counted on from its pulls, received, and how long it heard nothing. */
  snapshot(): { requested: number; received: number; quietMs: number } {
    return { requested: this.requested, received: this.received, quietMs: Date.now() - this.heardAt };
  }

  /** Asks for another batch when less than half of one is on its way. */
  private topUp(): void {
    if (this.done || this.requested >= this.o.batch / 2) return;
    this.requested += this.o.batch;
    try {
      sendPull(this.o.nc, this.o.apiPrefix, this.o.stream, this.o.consumer, this.inbox, {
        batch: this.o.batch,
        expiresMs: this.o.expiresMs,
        heartbeatMs: this.o.heartbeatMs,
      });
    } catch (err) {
      this.end('a pull failed', true, describeError(err));
    }
  }

  private onMessage(err: Error | null, msg: Msg): void {
    if (this.done) return;
    if (err) return this.end('the subscription failed', true, describeError(err));
    this.heard = true;
    if (msg.subject === this.inbox) return this.onStatus(msg);
    const reply = msg.reply ?? '';
    const info = this.ack;
    if (!info.parse(reply)) return this.end('a message without delivery info', true);
    if (info.dseq !== this.dseq + 1) return this.end('delivery gap', true, `${this.dseq} then ${info.dseq}`);
    this.dseq = info.dseq;
    this.received++;
    if (this.requested > 0) this.requested--;
    this.o.onEvent(info.seq, msg.subject, msg.data, reply, info.tsEnd);
    this.topUp();
  }

  private onStatus(msg: Msg): void {
    const { code, description, left } = pullStatus(msg);
    if (code === 100) return; // heartbeat
    this.requested = Math.max(0, this.requested - left);
    if (code === 408) return this.topUp(); // a pull expired: the next goes out at once
    this.end(`pull status ${code}`, true, description);
  }

  private tick(): void {
    if (this.done || this.judging) return;
    this.judging = true;
    setImmediate(this.judge);
  }

  /** A tick's judgement, after the I/O of its loop iteration (see the header). */
  private readonly judge = (): void => {
    this.judging = false;
    if (this.done) return;
    if (this.heard || !this.o.connected()) {
      if (this.heard) this.heardAt = Date.now();
      this.heard = false;
      this.quietTicks = 0;
      return;
    }
    if (++this.quietTicks >= 3) return this.end('heartbeats missed', true);
    if (this.quietTicks > 1) return;
    // A pull waiting on the server sends a heartbeat every interval, so none of ours waits there: the budget we
    // count is not on the server (a pull it ended without a status), and events would wait for a new consumer.
    // Ask again now. The new pull's first heartbeat comes one interval after it, about when the next tick runs,
    // so a feed whose consumer or server is gone ends on the third quiet tick, not the second.
    this.requested = 0;
    this.topUp();
  };
}
