/** What a transport needs from the client, and what the client needs from a transport. */
import { CLOSE_REASONS, type CloseClass, type CloseReason } from './protocol/closing.js';
import type { SubscribeErrorCode } from './protocol/errors.js';
import type { Backoff } from './backoff.js';
import type { SubscriptionState } from './subscription-state.js';
import type { ClientStatus, HookstreamError } from './types.js';

export type TokenRefresh = 'refreshed' | 'failed' | 'unsupported';

export interface TransportHost {
  /** The gateway origin, without a trailing slash. */
  readonly url: string;
  newBackoff(): Backoff;
  /** The token to present now (undefined: anonymous). */
  token(): string | undefined;
  /** Whether `getToken` was given, so a refused or expired token can be renewed. */
  readonly canRenewToken: boolean;
  /** Calls `getToken` (once for concurrent callers). `unsupported`: there is no `getToken`. */
  refreshToken(): Promise<TokenRefresh>;
  setStatus(status: ClientStatus): void;
  reportError(error: HookstreamError): void;
  /** An error no retry can fix (e.g. a refused token without `getToken`): closes the client. */
  fatal(error: HookstreamError): void;
}

export interface ClientTransport {
  add(sub: SubscriptionState): void;
  remove(sub: SubscriptionState): void;
  close(): void;
}

/**
 * How each subscribe refusal is handled: `unavailable` (the store) is always retried; `limit_exceeded` may be a
 * passing rate limit or a full replica, or a lasting limit (too many patterns), so it is retried a few times
 * before it counts as final; every other code is final for that subscription.
 */
const REFUSAL_RETRIES = {
  unavailable: 'always',
  limit_exceeded: 'a_few',
  invalid_request: 'never',
  invalid_subject: 'never',
  invalid_cursor: 'never',
  forbidden: 'never',
} as const satisfies Record<SubscribeErrorCode, 'always' | 'a_few' | 'never'>;

/** Whether to retry a refusal read off the wire; a code this SDK does not know (a newer gateway) is final. */
export function retryRefusal(code: string, limitRetriesSoFar: number): boolean {
  if (!Object.prototype.hasOwnProperty.call(REFUSAL_RETRIES, code)) return false;
  const policy = REFUSAL_RETRIES[code as SubscribeErrorCode];
  return policy === 'always' || (policy === 'a_few' && limitRetriesSoFar < LIMIT_RETRIES);
}
export const LIMIT_RETRIES = 3;

/**
 * How to come back after a `closing` reason read off the wire (renew the token first? at once or after a
 * backoff?); undefined for a reason this SDK does not know (a newer gateway), which is retried with backoff.
 */
export function closeClass(reason: string | undefined): CloseClass | undefined {
  return reason !== undefined && Object.prototype.hasOwnProperty.call(CLOSE_REASONS, reason)
    ? CLOSE_REASONS[reason as CloseReason]
    : undefined;
}
