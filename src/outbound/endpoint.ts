/** Outbound endpoints: the stored record, the API view and the error family. Pure types. */

export type EndpointStatus = 'active' | 'disabled';
export type DisabledReason = 'manual' | 'gone' | 'failing';
export type Ordering = 'unordered' | 'fifo';

/** What is stored per endpoint (API-created) or built from the config file (declared). */
export interface EndpointRecord {
  id: string;
  url: string;
  patterns: string[];
  description: string;
  status: EndpointStatus;
  disabledReason: DisabledReason | null;
  ordering: Ordering;
  maxInFlight: number;
  rateLimit: number | null;
  headers: Record<string, string>;
  /** The API key id that created it; null for declared endpoints. */
  owner: string | null;
  managed: 'api' | 'config';
  createdAt: string;
  secret: string;
  /** The secret before the last rotation, still signing until `until` (ms). */
  previousSecret: { secret: string; until: number } | null;
  /** The first stream sequence this endpoint receives. */
  startSeq: number;
}

export interface EndpointState {
  pending: number;
  dead: number;
  lastSuccessAt: string | null;
  lastFailureAt: string | null;
  failingSince: string | null;
}

/** Delivery health, shared by every gateway through the metadata store. */
export interface EndpointHealth {
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  failingSince: number | null;
  /** A declared endpoint's disable (410, `failing` or through the API): kept here, across restarts, until set active. */
  disabledReason?: DisabledReason | null;
  /**
   * Set when a disabled endpoint is set active again: events stored before this (ms) that its main queue still holds
   * are past the retry window, so they are recorded dead (`expired`) instead of sent.
   */
  expireBefore?: number | null;
}

export interface AttemptRecord {
  eventId: string;
  seq: number;
  cursor: string;
  attempt: number;
  at: string;
  durationMs: number;
  status: number | null;
  error: string | null;
  response: string;
}

export interface DeadLetter {
  eventId: string;
  seq: number;
  cursor: string;
  attempts: number;
  lastError: string | null;
  lastStatus: number | null;
  deadAt: string;
}

/** A redelivery: the events of [fromSeq, untilSeq] matching the endpoint, or only `seqs` among them. */
export interface RedeliveryJob {
  id: string;
  fromSeq: number;
  untilSeq: number;
  seqs: number[] | null;
  createdAt: string;
}

export type OutboundErrorCode =
  | 'invalid_request'
  | 'invalid_url'
  | 'invalid_subject'
  | 'invalid_cursor'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'read_only'
  | 'unavailable';

export class OutboundError extends Error {
  constructor(
    readonly code: OutboundErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OutboundError';
  }
}

export const OUTBOUND_ERROR_STATUS: Record<OutboundErrorCode, number> = {
  invalid_request: 400,
  invalid_url: 400,
  invalid_subject: 400,
  invalid_cursor: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  read_only: 409,
  unavailable: 503,
};

/** The secrets that sign a request now: the current one, and the previous during its grace. */
export function signingSecrets(e: EndpointRecord, nowMs: number): string[] {
  return e.previousSecret && e.previousSecret.until > nowMs ? [e.secret, e.previousSecret.secret] : [e.secret];
}

/** The endpoint as the API shows it: no secret, no internals. */
export function publicView(e: EndpointRecord, state?: EndpointState) {
  return {
    id: e.id,
    url: e.url,
    patterns: e.patterns,
    description: e.description,
    status: e.status,
    disabledReason: e.disabledReason,
    ordering: e.ordering,
    maxInFlight: e.maxInFlight,
    rateLimit: e.rateLimit,
    headers: e.headers,
    owner: e.owner,
    managed: e.managed,
    createdAt: e.createdAt,
    ...(state ? { state } : {}),
  };
}
