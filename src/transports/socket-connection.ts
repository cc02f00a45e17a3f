/**
 * One Socket.IO connection's protocol state: its subscriptions, its message budget, its token timer and its
 * closing. A class whose listeners are shared functions (found through `socket.data.conn`) rather than a set of
 * closures per connection: an idle connection's size is what limits how many one process holds, and every
 * closure kept per connection also kept the scope it was made in.
 */
import type { Socket } from 'socket.io';
import type { AppConfig } from '../config/app-config.js';
import type { Principal } from '../auth/auth.service.js';
import type { FanoutHub, Subscription } from '../fanout/fanout-hub.js';
import { SubscribeError } from '../fanout/fanout.types.js';
import type { AppLogger } from '../logging/logger.js';
import type {
  ClientToServerEvents,
  CloseReason,
  ServerToClientEvents,
  SubscribeAck,
  UnsubscribeAck,
} from '../protocol/index.js';
import type { ConnectionSlot } from './connection-registry.js';
import { MessageRateLimiter } from './message-rate-limiter.js';
import { checkSubscribeRequest, parseSocketSubscribe } from './subscribe-request.js';
import { SocketOutbox } from './socket-outbox.js';
import { armTokenExpiry } from './token-expiry.js';
import type { SlowConsumerCloser } from './turn-outbox.js';

/** The client's messages as they arrive: untrusted (any payload, maybe no ack) until parsed. */
export type Inbound = { [K in keyof ClientToServerEvents]: (payload: unknown, ack?: unknown) => void };

export interface SocketData {
  principal: Principal;
  /** The connection's slot (connection-registry.ts), held from the handshake. */
  slot?: ConnectionSlot;
  /** Set once the socket is connected. */
  conn?: SocketConnection;
}

export type HsSocket = Socket<Inbound, ServerToClientEvents, Record<string, never>, SocketData>;

/** The answer a client message's ack expects, by name. */
type AckOf<K extends keyof ClientToServerEvents> = Parameters<NonNullable<Parameters<ClientToServerEvents[K]>[1]>>[0];

/** What every connection of a gateway shares. */
export interface SocketDeps {
  config: AppConfig;
  hub: FanoutHub;
  log: AppLogger;
  /** Deliveries written per transport, read by the metrics on scrape (one counter for every connection). */
  delivered: { socketio: number };
  /** The socket has disconnected: its transport connection may connect a socket again. */
  forget(socket: HsSocket): void;
}

/**
 * The payload and the ack of a client message; `emit('subscribe', ack)` sends the ack as the only argument.
 * The ack goes out after the deliveries queued before it (socket-outbox.ts).
 */
function payloadAndAck<A>(outbox: SocketOutbox, payload: unknown, ack: unknown): [unknown, (answer: A) => void] {
  if (ack === undefined && typeof payload === 'function') [payload, ack] = [undefined, payload];
  if (typeof ack !== 'function') return [payload, noAck];
  return [
    payload,
    (answer) => {
      outbox.flush();
      (ack as (answer: A) => void)(answer);
    },
  ];
}

function noAck(): void {}

// Listeners shared by every connection: socket.io calls them with the socket as `this`.
function onSubscribe(this: HsSocket, payload: unknown, ack?: unknown): void {
  this.data.conn?.subscribe(payload, ack);
}
function onUnsubscribe(this: HsSocket, payload: unknown, ack?: unknown): void {
  this.data.conn?.unsubscribe(payload, ack);
}
function onDisconnect(this: HsSocket): void {
  this.data.conn?.disconnected();
}

export class SocketConnection implements SlowConsumerCloser {
  readonly outbox: SocketOutbox;
  /** Ids count per connection (s1, s2, …): clients that subscribed alike get byte-identical packets. */
  private lastId = 0;
  /** Made at the first subscribe. */
  private subs: Map<string, Subscription> | undefined;
  /**
   * Subscribes handed to the hub but not answered yet: they count against the limit too, or a burst of
   * subscribes sent before the first ack would all pass the check.
   */
  private pending = 0;
  private closed = false;
  private readonly limiter: MessageRateLimiter;
  private readonly cancelExpiry: () => void;

  constructor(
    private readonly socket: HsSocket,
    private readonly principal: Principal,
    private readonly deps: SocketDeps,
  ) {
    this.outbox = new SocketOutbox(socket, deps.delivered);
    socket.data.conn = this;
    this.outbox.onSlowConsumer(this);
    const { limits } = deps.config;
    this.limiter = new MessageRateLimiter(limits.messagesPerSecond, limits.messageBurst);
    this.cancelExpiry =
      principal.expiresAtMs === undefined
        ? noAck
        : armTokenExpiry(principal.expiresAtMs, () => this.close('token_expired'));
    // Every incoming message spends from the connection's budget before any handler runs (unknown events too).
    socket.use((packet, next) => this.admit(packet, next));
    socket.on('subscribe', onSubscribe);
    socket.on('unsubscribe', onUnsubscribe);
    socket.on('disconnect', onDisconnect);
  }

  closeSlowConsumer(): void {
    this.close('slow_consumer');
  }

  /** Says why (with the cursor when there is one subscription) and disconnects. */
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    const only = this.subs?.size === 1 ? [...this.subs.values()][0].cursor : undefined;
    // The cursor counts every delivery handed to the outbox: they must reach the client before it closes.
    this.outbox.flush();
    this.socket.emit('closing', { reason, ...(only ? { cursor: only } : {}) });
    this.socket.disconnect(true);
  }

  private admit(packet: unknown[], next: (err?: Error) => void): void {
    const verdict = this.limiter.take();
    if (verdict === 'allow') return next();
    if (verdict === 'disconnect') return this.close('rate_limited');
    const ack: unknown = packet[packet.length - 1];
    const refused: SubscribeAck & UnsubscribeAck = { ok: false, error: 'limit_exceeded' };
    if (typeof ack === 'function') (ack as (answer: typeof refused) => void)(refused);
  }

  subscribe(payload: unknown, ack: unknown): void {
    const [body, reply] = payloadAndAck<AckOf<'subscribe'>>(this.outbox, payload, ack);
    const { config, hub, log } = this.deps;
    const req = parseSocketSubscribe(body);
    if (!req) return reply({ ok: false, error: 'invalid_request' });
    if ((this.subs?.size ?? 0) + this.pending >= config.limits.subscriptionsPerConnection) {
      return reply({ ok: false, error: 'limit_exceeded' });
    }
    const refused = checkSubscribeRequest(this.principal, req, config.limits);
    if (refused) return reply({ ok: false, error: refused });
    const id = `s${++this.lastId}`;
    const sink = this.outbox.sink(id);
    this.pending++;
    hub.subscribe(req, sink).then(
      (sub) => {
        this.pending--;
        if (!this.socket.connected) return sub.close();
        (this.subs ??= new Map()).set(id, sub);
        reply({ ok: true, id, cursor: sub.startCursor });
        sub.begin();
      },
      (err: unknown) => {
        this.pending--;
        if (err instanceof SubscribeError) return reply({ ok: false, error: err.code });
        log.error({ err }, 'subscribe failed');
        reply({ ok: false, error: 'unavailable' });
      },
    );
  }

  unsubscribe(payload: unknown, ack: unknown): void {
    const [body, reply] = payloadAndAck<AckOf<'unsubscribe'>>(this.outbox, payload, ack);
    const id = (body as { id?: unknown } | null)?.id;
    if (typeof id !== 'string') return reply({ ok: false, error: 'invalid_request' });
    this.subs?.get(id)?.close();
    this.subs?.delete(id);
    reply({ ok: true });
  }

  /** Gives back everything the connection holds. */
  disconnected(): void {
    this.cancelExpiry();
    const subs = this.subs;
    this.subs = undefined;
    for (const sub of subs?.values() ?? []) sub.close();
    this.socket.data.slot?.release();
    this.deps.forget(this.socket);
  }
}
