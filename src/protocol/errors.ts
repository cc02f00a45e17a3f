/**
 * Error codes, one union per family, and the HTTP error body. Codes are stable: a client may branch on them.
 * Which HTTP status, Socket.IO ack or close reason a code becomes is decided at the server's edge
 * (controllers, the gateway, the exception filter), each by an exhaustive table over its family.
 */

/** A webhook whose signature does not check out (401). */
export type VerifyErrorCode = 'missing_signature' | 'invalid_signature' | 'timestamp_out_of_tolerance';

/** Refusals of the ingest service (`POST /webhooks/:source`, `POST /v1/events`), before the HTTP edge. */
export type IngestErrorCode =
  | VerifyErrorCode
  | 'unknown_source'
  | 'invalid_payload'
  | 'invalid_subject'
  | 'forbidden'
  | 'payload_too_large'
  | 'unavailable';

/**
 * A refused subscription: the Socket.IO `subscribe` ack's `error`, and the status code's body on `GET /v1/stream`.
 * `invalid_request`: not a subscription request of the documented shape; `limit_exceeded`: over a `limits` key;
 * `unavailable`: the store cannot be read right now (retry).
 */
export type SubscribeErrorCode =
  'invalid_request' | 'invalid_subject' | 'invalid_cursor' | 'forbidden' | 'limit_exceeded' | 'unavailable';

/** The Socket.IO handshake's `connect_error` message. */
export type HandshakeErrorCode = 'unauthorized' | 'forbidden' | 'limit_exceeded' | 'shutdown';

/** Every `error` an HTTP answer may carry. */
export type HttpErrorCode =
  | IngestErrorCode
  | SubscribeErrorCode
  | 'unauthorized'
  | 'not_found'
  | 'method_not_allowed'
  | 'request_timeout'
  | 'unsupported_media_type'
  | 'internal_error'
  // The management APIs (outbound endpoints, schemas).
  | 'invalid_url'
  | 'invalid_schema'
  | 'incompatible_schema'
  | 'schema_violation'
  | 'read_only';

/** The body of every HTTP refusal. Some codes add fields of their own (e.g. `errors`, `reasons`). */
export interface ErrorBody<C extends string = HttpErrorCode> {
  error: C;
  message: string;
  [field: string]: unknown;
}
