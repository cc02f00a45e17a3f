/**
 * Our own pull requests, shared by the catch-up reader and the live tail: a `$JS.API.CONSUMER.MSG.NEXT` request
 * published with the reader's inbox as its reply subject (the messages and the pull's statuses then come to the
 * inbox's callback subscription), and the reading of such a status.
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { nanos } from './jetstream-util.js';

export interface PullRequest {
  /** Messages asked for. */
  batch: number;
  /** How long the server keeps the request waiting; it then answers 408 with what it did not deliver. */
  expiresMs: number;
  /** While the request waits with nothing to deliver, the server sends a 100 status this often. */
  heartbeatMs?: number;
}

/** Sends one pull for `consumer`; its messages and statuses go to `inbox`. Throws if the connection is closed. */
export function sendPull(
  nc: NatsConnection,
  apiPrefix: string,
  stream: string,
  consumer: string,
  inbox: string,
  req: PullRequest,
): void {
  const body: { batch: number; expires: number; idle_heartbeat?: number } = {
    batch: req.batch,
    expires: nanos(req.expiresMs),
  };
  if (req.heartbeatMs) body.idle_heartbeat = nanos(req.heartbeatMs);
  nc.publish(`${apiPrefix}.CONSUMER.MSG.NEXT.${stream}.${consumer}`, JSON.stringify(body), { reply: inbox });
}

/** A status a pull's inbox received (a message on the inbox subject itself). */
export interface PullStatus {
  /** 100 heartbeat, 408 expired, 409 ended by the server (consumer deleted, leader change …), 404, 503 … */
  code: number;
  description: string;
  /** Messages the ended pull did not deliver (0 when not said). */
  left: number;
}

export function pullStatus(msg: Msg): PullStatus {
  const h = msg.headers;
  const left = Number(h?.get('Nats-Pending-Messages') || 0);
  return {
    code: h?.code ?? 0,
    description: h?.description ?? '',
    left: Number.isFinite(left) && left > 0 ? left : 0,
  };
}
