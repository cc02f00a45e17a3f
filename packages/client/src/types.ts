/**
 * Public shapes of the Hookstream client SDK. The wire shapes come from src/protocol, which holds types only
 * (and the close-reason table), so the SDK bundle carries no server code.
 */
import type { CloudEvent, GapNotice, SubscribeErrorCode, WireDelivery } from './protocol/index.js';

export type { CloudEvent, GapNotice };

/** One event as delivered on every transport. */
export type Delivery<T = unknown> = WireDelivery<CloudEvent<T>>;

export type ClientStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

export type Transport = 'websocket' | 'sse';

/** The subset of the Web Storage API the SDK uses (localStorage, sessionStorage or your own). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** What the SDK reads of a MessageEvent; declared here so Node programs need no DOM types to use the SDK. */
export interface MessageEventLike {
  readonly data: string;
}

/** What the SDK needs of an EventSource (the browser's, or the `eventsource` package's in Node). */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEventLike) => void): void;
  close(): void;
}
export type EventSourceConstructor = new (url: string) => EventSourceLike;

export interface ReconnectOptions {
  /** First retry delay; each failed attempt doubles it. Default 250 ms. */
  minDelayMs?: number;
  /** Largest retry delay. Default 10 s. */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** The gateway's origin, e.g. `https://events.example.com`. */
  url: string;
  /** A JWT or API key; none means the gateway's anonymous grant. */
  token?: string;
  /**
   * Returns a fresh token. Called before the first connection when `token` is absent, and again whenever the
   * gateway refuses or expires the current one.
   */
  getToken?: () => string | Promise<string>;
  /** Default `websocket` (Socket.IO); `sse` opens one EventSource per subscription. */
  transport?: Transport;
  /** EventSource implementation for the `sse` transport; default `globalThis.EventSource`. */
  EventSource?: EventSourceConstructor;
  /** Where `persistKey` cursors are kept; default `globalThis.localStorage` when available, `null` for none. */
  storage?: StorageLike | null;
  reconnect?: ReconnectOptions;
}

/** The gateway's refusals (a subscription's, a token's), and the SDK's own failures. */
export type ErrorCode =
  SubscribeErrorCode | 'unauthorized' | 'token_expired' | 'token_refresh_failed' | 'callback_failed' | 'unsupported';

/** An error the SDK reports through `client.on('error')` and `SubscribeOptions.onError`. */
export class HookstreamError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The patterns of the subscription concerned, when there is one. */
    readonly patterns?: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HookstreamError';
  }
}

export interface SubscribeOptions {
  /** Start after this cursor (wins over `persistKey` and `from`). */
  cursor?: string;
  /** `earliest`, `latest` (the gateway's default) or an RFC 3339 time, used when no cursor is known. */
  from?: string;
  /** Called when the gateway reports events lost before the subscription's position. */
  onGap?: (notice: GapNotice) => void;
  /** Keep the cursor in `storage` under this key, so a reload resumes where the page left off. */
  persistKey?: string;
  /** Called when the gateway refuses this subscription for good (forbidden, invalid_subject, ...). */
  onError?: (error: HookstreamError) => void;
}

export interface Subscription {
  readonly patterns: readonly string[];
  /** The position reached: the last delivery's cursor, else the start position the gateway acknowledged. */
  readonly cursor: string | undefined;
  /** Resolves when the gateway first accepts the subscription; rejects if it refuses it for good. */
  readonly ready: Promise<void>;
  unsubscribe(): void;
}

export interface ClientEvents {
  status: (status: ClientStatus) => void;
  error: (error: HookstreamError) => void;
}

export interface HookstreamClient {
  readonly status: ClientStatus;
  subscribe<T = unknown>(
    patterns: string | readonly string[],
    onDelivery: (delivery: Delivery<T>) => void,
    options?: SubscribeOptions,
  ): Subscription;
  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void;
  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void;
  /** Closes every connection; status becomes `closed`. */
  close(): void;
}
