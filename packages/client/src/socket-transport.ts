/**
 * Socket.IO transport: one WebSocket for every subscription. Socket.IO's own reconnection is off: the SDK
 * reconnects itself so it can back off with jitter, renew a refused or expired token first, and re-subscribe
 * every subscription from its own cursor.
 */
import { io, type Socket } from 'socket.io-client';
import type { Backoff } from './backoff.js';
import type { SubscriptionState } from './subscription-state.js';
import type { ClientToServerEvents, CloudEvent, ServerToClientEvents } from './protocol/index.js';
import { closeClass, retryRefusal, type ClientTransport, type TransportHost } from './transport.js';
import { HookstreamError, type ErrorCode } from './types.js';

interface Entry {
  state: SubscriptionState;
  /** The gateway's id for it on the current connection. */
  id?: string;
  retry?: ReturnType<typeof setTimeout>;
  backoff: Backoff;
  limitRetries: number;
}

const ACK_TIMEOUT_MS = 15_000;
/** A connection that stays up this long resets the backoff. */
const STABLE_MS = 5_000;

export class SocketTransport implements ClientTransport {
  private readonly socket: Socket<ServerToClientEvents<CloudEvent>, ClientToServerEvents>;
  private readonly entries = new Map<SubscriptionState, Entry>();
  private readonly byId = new Map<string, Entry>();
  private readonly backoff: Backoff;
  /** Bumped on every connect and disconnect, so a late ack from an earlier connection is ignored. */
  private generation = 0;
  private closingReason: string | undefined;
  private reconnectTimer?: ReturnType<typeof setTimeout>;
  private stableTimer?: ReturnType<typeof setTimeout>;
  private everConnected = false;
  private closed = false;

  constructor(private readonly host: TransportHost) {
    this.backoff = host.newBackoff();
    // A gateway behind a base path (https://host/hookstream) serves Socket.IO under it; the URL's path would
    // otherwise be read as a Socket.IO namespace.
    const url = new URL(host.url);
    this.socket = io(url.origin, {
      path: `${url.pathname.replace(/\/+$/, '')}/socket.io`,
      transports: ['websocket'],
      reconnection: false,
      autoConnect: false,
      forceNew: true,
      timeout: 10_000,
      // The callback form is read on every connection attempt, so a renewed token is the one sent.
      auth: (cb) => {
        const token = host.token();
        cb(token === undefined ? {} : { token });
      },
    });
    this.socket.on('connect', () => this.onConnect());
    this.socket.on('connect_error', (err) => this.onConnectError(err));
    this.socket.on('disconnect', (reason) => this.onDisconnect(reason));
    this.socket.on('event', (msg) => {
      const entry = this.byId.get(msg?.subscription);
      if (!entry) return;
      const { subscription: _id, ...delivery } = msg;
      entry.state.deliver(delivery);
    });
    this.socket.on('gap', (msg) => {
      const entry = this.byId.get(msg?.subscription);
      if (entry) entry.state.gap({ from: msg.from, resumeCursor: msg.resumeCursor });
    });
    this.socket.on('closing', (msg) => {
      this.closingReason = typeof msg?.reason === 'string' ? msg.reason : undefined;
    });
    void this.connect(host.token() === undefined);
  }

  add(state: SubscriptionState): void {
    const entry: Entry = { state, backoff: this.host.newBackoff(), limitRetries: 0 };
    this.entries.set(state, entry);
    if (this.socket.connected) this.subscribe(entry);
  }

  remove(state: SubscriptionState): void {
    const entry = this.entries.get(state);
    if (!entry) return;
    this.entries.delete(state);
    clearTimeout(entry.retry);
    if (entry.id !== undefined) {
      this.byId.delete(entry.id);
      if (this.socket.connected) this.socket.emit('unsubscribe', { id: entry.id });
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.stableTimer);
    for (const entry of this.entries.values()) clearTimeout(entry.retry);
    this.socket.disconnect();
  }

  /** Connects, after renewing the token when asked to (or when there is none yet and `getToken` can give one). */
  private async connect(renewToken: boolean): Promise<void> {
    if (this.closed) return;
    if (renewToken) {
      const renewed = await this.host.refreshToken();
      if (this.closed) return;
      if (renewed === 'failed') return this.scheduleReconnect(this.backoff.next(), true);
    }
    this.socket.connect();
  }

  private scheduleReconnect(delayMs: number, renewToken: boolean): void {
    if (this.closed) return;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect(renewToken), delayMs);
  }

  private onConnect(): void {
    this.generation++;
    this.everConnected = true;
    this.closingReason = undefined;
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => this.backoff.reset(), STABLE_MS);
    this.host.setStatus('live');
    for (const entry of this.entries.values()) this.subscribe(entry);
  }

  private onConnectError(err: Error): void {
    if (this.closed) return;
    this.host.setStatus(this.everConnected ? 'reconnecting' : 'connecting');
    if (err.message === 'unauthorized') {
      if (!this.canRenew('unauthorized')) return;
      return this.scheduleReconnect(this.backoff.next(), true);
    }
    // Network errors, a draining replica ('shutdown'), a full one ('limit_exceeded'): try again later.
    this.scheduleReconnect(this.backoff.next(), false);
  }

  private onDisconnect(reason: string): void {
    this.generation++;
    clearTimeout(this.stableTimer);
    this.byId.clear();
    for (const entry of this.entries.values()) {
      entry.id = undefined;
      clearTimeout(entry.retry);
    }
    const why = this.closingReason;
    this.closingReason = undefined;
    if (this.closed || reason === 'io client disconnect') return;
    this.host.setStatus('reconnecting');
    const how = closeClass(why);
    if (how?.renewToken) {
      if (!this.canRenew(why === 'token_expired' ? 'token_expired' : 'unauthorized')) return;
      return this.scheduleReconnect(this.backoff.prompt(), true);
    }
    // A replica going away asks its clients to move at once; anything else backs off.
    this.scheduleReconnect(how?.retry === 'prompt' ? this.backoff.prompt() : this.backoff.next(), false);
  }

  /** Without `getToken` a refused token stays refused: that ends the client. */
  private canRenew(code: ErrorCode): boolean {
    if (this.host.canRenewToken) return true;
    this.host.fatal(new HookstreamError(code, `the gateway refused the token (${code}) and no getToken was given`));
    return false;
  }

  private subscribe(entry: Entry): void {
    const generation = this.generation;
    const subjects = [...entry.state.patterns];
    this.socket.timeout(ACK_TIMEOUT_MS).emit('subscribe', { subjects, ...entry.state.startRequest() }, (err, ack) => {
      // A different connection by now: onConnect has subscribed again from the cursor.
      if (this.closed || generation !== this.generation) return;
      const current = this.entries.get(entry.state) === entry;
      if (err || !ack || typeof ack !== 'object') {
        if (current) this.retry(entry);
        return;
      }
      if (ack.ok) {
        if (!current) {
          this.socket.emit('unsubscribe', { id: ack.id }); // unsubscribed while the ack was on its way
          return;
        }
        entry.id = ack.id;
        this.byId.set(ack.id, entry);
        entry.backoff.reset();
        entry.limitRetries = 0;
        entry.state.accepted(ack.cursor);
        return;
      }
      if (current) this.refused(entry, String(ack.error));
    });
  }

  private retry(entry: Entry): void {
    clearTimeout(entry.retry);
    entry.retry = setTimeout(() => {
      if (this.socket.connected && this.entries.get(entry.state) === entry) this.subscribe(entry);
    }, entry.backoff.next());
  }

  private refused(entry: Entry, code: string): void {
    if (retryRefusal(code, entry.limitRetries)) {
      if (code === 'limit_exceeded') entry.limitRetries++;
      return this.retry(entry);
    }
    if (code === 'invalid_cursor' && entry.state.forgetStoredCursor()) return this.subscribe(entry);
    this.entries.delete(entry.state);
    const error = new HookstreamError(
      code as ErrorCode,
      `the gateway refused the subscription to ${entry.state.patterns.join(', ')}: ${code}`,
      entry.state.patterns,
    );
    entry.state.fail(error);
    this.host.reportError(error);
  }
}
