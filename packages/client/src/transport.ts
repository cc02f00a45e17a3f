/** What a transport needs from the client, and what the client needs from a transport. */
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
 * How a subscribe refusal is handled: `unavailable` (the store) is always retried; `limit_exceeded` may be a
 * passing rate limit or a full replica, or a lasting limit (too many patterns), so it is retried a few times
 * before it counts as final; every other code is final for that subscription.
 */
export function retryRefusal(code: string, limitRetriesSoFar: number): boolean {
  if (code === 'unavailable') return true;
  return code === 'limit_exceeded' && limitRetriesSoFar < LIMIT_RETRIES;
}
export const LIMIT_RETRIES = 3;

/** Close reasons (docs/protocol.md) after which the token must be renewed before reconnecting. */
export const TOKEN_REASONS: ReadonlySet<string> = new Set(['token_expired', 'unauthorized']);
