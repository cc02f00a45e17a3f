/**
 * `createClient`: the SDK's entry point (docs/protocol.md, "The SDK"). Owns the token, the status, the
 * listeners and the subscriptions; the transport owns the connections.
 */
import { Backoff } from './backoff.js';
import { SocketTransport } from './socket-transport.js';
import { SseTransport } from './sse-transport.js';
import { SubscriptionState } from './subscription-state.js';
import type { ClientTransport, TokenRefresh, TransportHost } from './transport.js';
import {
  HookstreamError,
  type ClientEvents,
  type ClientOptions,
  type ClientStatus,
  type Delivery,
  type EventSourceConstructor,
  type HookstreamClient,
  type StorageLike,
  type SubscribeOptions,
  type Subscription,
} from './types.js';

function defaultStorage(): StorageLike | null {
  try {
    // Reading localStorage throws in some sandboxed frames; absent in Node.
    return (globalThis as { localStorage?: StorageLike }).localStorage ?? null;
  } catch {
    return null;
  }
}

/** The gateway URL without a trailing slash; relative URLs resolve against the page. */
function normaliseUrl(url: string): string {
  const base = (globalThis as { location?: { href: string } }).location?.href;
  const parsed = base ? new URL(url, base) : new URL(url);
  parsed.search = '';
  parsed.hash = '';
  return parsed.toString().replace(/\/+$/, '');
}

class Client implements HookstreamClient {
  private statusValue: ClientStatus = 'connecting';
  private readonly listeners: { [E in keyof ClientEvents]: Set<ClientEvents[E]> } = {
    status: new Set(),
    error: new Set(),
  };
  private readonly subscriptions = new Set<SubscriptionState>();
  private readonly transport: ClientTransport;
  private readonly storage: StorageLike | null;
  private token: string | undefined;
  private renewing: Promise<TokenRefresh> | undefined;
  private closed = false;

  constructor(private readonly options: ClientOptions) {
    if (!options || typeof options.url !== 'string') throw new TypeError('createClient: `url` is required');
    this.token = options.token;
    this.storage = options.storage === undefined ? defaultStorage() : options.storage;
    const url = normaliseUrl(options.url);
    const host: TransportHost = {
      url,
      canRenewToken: typeof options.getToken === 'function',
      newBackoff: () => new Backoff(options.reconnect),
      token: () => this.token,
      refreshToken: () => this.renewToken(),
      setStatus: (status) => this.setStatus(status),
      reportError: (error) => this.emitError(error),
      fatal: (error) => {
        this.emitError(error);
        this.close();
      },
    };
    const transport = options.transport ?? 'websocket';
    if (transport === 'sse') {
      const impl = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
      if (!impl)
        throw new TypeError(
          'createClient: the sse transport needs EventSource (pass the `EventSource` option in Node)',
        );
      this.transport = new SseTransport(host, impl);
    } else if (transport === 'websocket') {
      this.transport = new SocketTransport(host);
    } else {
      throw new TypeError(`createClient: unknown transport ${String(transport)}`);
    }
  }

  get status(): ClientStatus {
    return this.statusValue;
  }

  subscribe<T = unknown>(
    patterns: string | readonly string[],
    onDelivery: (delivery: Delivery<T>) => void,
    options: SubscribeOptions = {},
  ): Subscription {
    if (this.closed) throw new Error('hookstream: subscribe() on a closed client');
    const list = typeof patterns === 'string' ? [patterns] : [...patterns];
    if (list.length === 0 || !list.every((p) => typeof p === 'string' && p !== '')) {
      throw new TypeError('hookstream: subscribe() needs one or more subject patterns');
    }
    if (typeof onDelivery !== 'function') throw new TypeError('hookstream: subscribe() needs a delivery callback');
    const state = new SubscriptionState(
      list,
      { onDelivery: onDelivery as (d: Delivery) => void, onCallbackError: (e) => this.emitError(e) },
      options,
      this.storage,
    );
    this.subscriptions.add(state);
    this.transport.add(state);
    const unsubscribe = () => {
      if (!this.subscriptions.delete(state)) return;
      this.transport.remove(state);
    };
    return {
      patterns: state.patterns,
      get cursor() {
        return state.cursor;
      },
      ready: state.ready,
      unsubscribe,
    };
  }

  on<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): () => void {
    (this.listeners[event] as Set<ClientEvents[E]>).add(listener);
    return () => this.off(event, listener);
  }

  off<E extends keyof ClientEvents>(event: E, listener: ClientEvents[E]): void {
    (this.listeners[event] as Set<ClientEvents[E]>).delete(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
    this.subscriptions.clear();
    this.setStatus('closed');
  }

  private setStatus(status: ClientStatus): void {
    if (this.statusValue === status || (this.closed && status !== 'closed')) return;
    this.statusValue = status;
    for (const fn of [...this.listeners.status]) {
      try {
        fn(status);
      } catch (err) {
        this.emitError(
          new HookstreamError('callback_failed', `a status listener threw: ${String(err)}`, undefined, { cause: err }),
        );
      }
    }
  }

  private emitError(error: HookstreamError): void {
    const listeners = [...this.listeners.error];
    // Nobody listening: say it on the console rather than lose it.
    if (listeners.length === 0) console.error(error);
    for (const fn of listeners) {
      try {
        fn(error);
      } catch (err) {
        console.error(err);
      }
    }
  }

  private renewToken(): Promise<TokenRefresh> {
    const getToken = this.options.getToken;
    if (typeof getToken !== 'function') return Promise.resolve('unsupported');
    this.renewing ??= (async (): Promise<TokenRefresh> => {
      try {
        const token = await getToken();
        if (typeof token !== 'string' || token === '') throw new Error('getToken returned no token');
        this.token = token;
        return 'refreshed';
      } catch (err) {
        this.emitError(
          new HookstreamError('token_refresh_failed', `getToken failed: ${String(err)}`, undefined, { cause: err }),
        );
        return 'failed';
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }
}

/** Connects to a Hookstream gateway. See docs/protocol.md ("The SDK"). */
export function createClient(options: ClientOptions): HookstreamClient {
  return new Client(options);
}
