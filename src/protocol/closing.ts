/**
 * Why the gateway ends a connection. It says so first (Socket.IO `closing`, SSE `event: closing`), then
 * disconnects; the class tells a client how to come back.
 */

export type CloseReason =
  /** The token reached its `exp`. */
  | 'token_expired'
  /** The client read too slowly and fell too far behind; it resumes by cursor. */
  | 'slow_consumer'
  /** This replica is going away; reconnect (to another one) at once. */
  | 'shutdown'
  /** The credentials are no longer accepted. */
  | 'unauthorized'
  /** The client kept sending past `limits.messageBurst` while its messages were refused. */
  | 'rate_limited';

export interface CloseClass {
  /** Get a new token before reconnecting; without a way to get one, the close is final. */
  readonly renewToken: boolean;
  /** `prompt`: reconnect right away; `backoff`: after the usual growing delay. */
  readonly retry: 'prompt' | 'backoff';
}

/** Every reason with its class: a new reason does not compile until it is classed here. */
export const CLOSE_REASONS = {
  token_expired: { renewToken: true, retry: 'prompt' },
  unauthorized: { renewToken: true, retry: 'prompt' },
  shutdown: { renewToken: false, retry: 'prompt' },
  slow_consumer: { renewToken: false, retry: 'backoff' },
  rate_limited: { renewToken: false, retry: 'backoff' },
} as const satisfies Record<CloseReason, CloseClass>;

/** The `closing` message: `cursor` is the last position sent when the connection held one subscription. */
export interface ClosingMessage {
  reason: CloseReason;
  cursor?: string;
}
