/**
 * Durable delivery positions for outbound webhooks: one named queue per endpoint (and per redelivery job), kept by
 * the event store itself, so a restarted or second gateway continues where the first stopped. JetStream keeps one
 * durable pull consumer per queue; the embedded log keeps a position row and per-event retry rows in its SQLite file.
 *
 * A queue hands out stored events from its start sequence on, in stream order, that match its one filter pattern.
 * An item handed out and neither acked, retried nor dropped within `ackWaitMs` is handed out again (a crashed
 * attempt); `attempt` counts every hand-out of that event, so a schedule never restarts from the first attempt.
 * Items handed out or waiting for a retry count toward `maxInFlight` (queue-wide, across every process): 1 gives
 * strict order.
 */

export interface DeliveryQueueOptions {
  /** One subject pattern; the queue may hand out events the caller does not want (it then acks them). */
  filter: string;
  /** The first sequence handed out; used only when the queue is created. */
  startSeq: number;
  maxInFlight: number;
  /** How long a hand-out may stay unanswered before the event is handed out again. */
  ackWaitMs: number;
}

export interface DeliveryItem {
  seq: number;
  subject: string;
  /** The stored envelope bytes. */
  data: Uint8Array;
  /** When the store accepted the event, ms since the Unix epoch. */
  time: number;
  /** 1 on the first hand-out, 2 on the next, … (crashed hand-outs included). */
  attempt: number;
  /** Done: never handed out again. Resolves once the store has recorded it. */
  ack(): Promise<void>;
  /** Handed out again no sooner than `delayMs` from now; it keeps its place toward maxInFlight meanwhile. */
  retry(delayMs: number): Promise<void>;
  /** Given up (dead): never handed out again. */
  drop(): Promise<void>;
}

export interface DeliveryQueueState {
  /** Matching events not yet handed out (JetStream counts against the filter, so may include skipped ones). */
  backlog: number;
  /** Handed out or waiting for a retry. */
  inFlight: number;
  /** The stream sequence of the last event handed out for the first time; 0 if none. */
  lastHandedOut: number;
}

export interface DeliveryQueue {
  /** Up to `max` items due now, waiting up to `waitMs` for the first. May return early with none. */
  fetch(max: number, waitMs: number): Promise<DeliveryItem[]>;
  state(): Promise<DeliveryQueueState>;
}

export interface DeliveryQueues {
  /** Opens the queue, creating it when absent; an existing one keeps its position and takes the new filter and limits. */
  open(name: string, options: DeliveryQueueOptions): Promise<DeliveryQueue>;
  /** Removes the queue and everything pending in it; no error when absent. */
  delete(name: string): Promise<void>;
  /** Names of every queue whose name starts with `prefix`. */
  list(prefix: string): Promise<string[]>;
}

/** Queue names: `[A-Za-z0-9_-]{1,200}`. */
export const QUEUE_NAME = /^[A-Za-z0-9_-]{1,200}$/;
