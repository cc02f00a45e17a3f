/**
 * The event-store port: the only way the rest of Hookstream touches durable state.
 * Two adapters implement it: JetStream (`jetstream/`) and the embedded single-node log (`embedded/`).
 * Both are held to the same contract suite (test/support/store-contract.ts), run against each.
 *
 * Sequences are the stream's own: positive integers, strictly increasing, global across subjects,
 * never reused within one epoch. The epoch names one incarnation of the stream; recreating the stream
 * (or the embedded log) gives a new epoch, so cursors from before are recognised as foreign.
 */
import type { DeliveryQueues } from './delivery-queue.port.js';
import type { MetadataStore } from './metadata.port.js';

/** One stored message: the CloudEvent envelope as JSON bytes, at its stream sequence. */
export interface StoredEvent {
  seq: number;
  subject: string;
  /** The envelope, UTF-8 JSON, exactly as appended. */
  data: Uint8Array;
  /** When the store accepted it, ms since the Unix epoch. */
  time: number;
}

export interface AppendRequest {
  subject: string;
  /**
   * Idempotency key (`<source>:<delivery id>`; JetStream's Nats-Msg-Id). A second append with the
   * same key within `idempotency.ttl` stores nothing and answers `duplicate: true`.
   * JetStream writes the record that holds beyond the stream's duplicate window just after answering
   * (idempotency-recorder.ts): if the process dies in those few ms, a later re-send is recognised only
   * inside the duplicate window. The embedded log commits the key with the event.
   */
  msgId: string;
  data: Uint8Array;
}

export interface AppendResult {
  seq: number;
  /** True when this msgId had already been stored; `seq` is then the original's when known (> 0). */
  duplicate: boolean;
}

export interface StreamState {
  /** Opaque identity of this incarnation of the stream: `[0-9a-z]{1,16}`. */
  epoch: string;
  /** Oldest stored sequence; `lastSeq + 1` when the stream is empty. */
  firstSeq: number;
  /** Newest stored sequence; 0 when nothing was ever stored. */
  lastSeq: number;
}

export interface ReadOptions {
  /** First sequence wanted (inclusive). */
  fromSeq: number;
  /** One subject pattern (NATS wildcards) the store filters on; matching is exact per NATS rules. */
  filter: string;
  /**
   * The read's end point: it stops at `untilSeq` (the embedded log, which bounds its scan there) or after the
   * first matching event with `seq >= untilSeq` (JetStream), or earlier at the end of the stream. Callers
   * treat whatever comes after `untilSeq` as a bonus, never as owed.
   */
  untilSeq: number;
}

/** A paged catch-up read. Pages are in stream order; an empty page means the read is complete. */
export interface EventReader {
  next(maxEvents: number): Promise<StoredEvent[]>;
  /** Releases server-side resources (e.g. deletes the JetStream consumer). Idempotent. */
  close(): Promise<void>;
}

/** The live tail: every event from `fromSeq` on, in order, with no gap, until stopped. */
export interface Tail {
  stop(): Promise<void>;
}

export type TailHandler = (event: StoredEvent) => void;

export interface EventStore {
  /** Human name for logs: `jetstream` or `embedded`. */
  readonly kind: string;
  /** Connect (retrying forever in the background) and create or update the stream. */
  start(): Promise<void>;
  /** Stop tails and readers, drain connections. */
  stop(): Promise<void>;
  /** True when the store is reachable and the stream exists (readiness). */
  isReady(): Promise<boolean>;
  /** Stores one event durably; resolves only after it is durable. Throws StoreUnavailableError otherwise. */
  append(req: AppendRequest): Promise<AppendResult>;
  state(): Promise<StreamState>;
  /** The first sequence stored at or after `timeMs`; `lastSeq + 1` if none is. */
  seqAtTime(timeMs: number): Promise<number>;
  openReader(opts: ReadOptions): Promise<EventReader>;
  /** Starts the live tail at `fromSeq`. The handler is called synchronously per event, in order. */
  tail(fromSeq: number, handler: TailHandler): Promise<Tail>;
  /**
   * Idempotency records written after the answer (JetStream only): how many wait to be written, and how many
   * were given up (their dedupe beyond the msgId window is lost). Absent when records are written with the event.
   */
  idempotencyRecords?(): { pending: number; dropped: number };
  /**
   * Key-value buckets kept beside the events, shared by every gateway on the same store (metadata.port.ts).
   * Its calls throw StoreUnavailableError while the store is unreachable.
   */
  metadata(): MetadataStore;
  /** Durable per-endpoint delivery positions for outbound webhooks (delivery-queue.port.ts). */
  deliveryQueues?(): DeliveryQueues;
}

export const EVENT_STORE = Symbol('EVENT_STORE');

/** The store cannot be reached or did not confirm in time: the outcome of a write is unknown. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Another process holds the embedded log's directory. */
export class StoreLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreLockedError';
  }
}
