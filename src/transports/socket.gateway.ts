/**
 * Socket.IO transport (DESIGN.md §5): protocol only. Authentication happens in the handshake,
 * subscriptions are handed to the fan-out hub, and the hub writes through a per-subscription sink.
 */
import { Inject } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { AuthError, Authenticator, type Principal } from '../auth/auth.service.js';
import { FanoutHub } from '../fanout/fanout-hub.js';
import { SubscribeError, type GapNotice, type WireDelivery } from '../fanout/fanout.types.js';
import type { Subscription } from '../fanout/fanout-hub.js';
import { APP_LOGGER, type AppLogger } from '../logging/logger.js';
import { Lifecycle } from '../lifecycle.js';
import { clientAddress, originAllowed } from './client-address.js';
import { ConnectionRegistry } from './connection-registry.js';
import { MessageRateLimiter } from './message-rate-limiter.js';
import { checkSubscribeRequest, parseSocketSubscribe } from './subscribe-request.js';
import { SocketOutbox } from './socket-outbox.js';
import { armTokenExpiry } from './token-expiry.js';
import type { RateVerdict } from './message-rate-limiter.js';

/** `rate_limited`: the client kept sending past `limits.messageBurst` while its messages were refused. */
export type CloseReason = 'token_expired' | 'slow_consumer' | 'shutdown' | 'unauthorized' | 'rate_limited';

/** Messages the server sends, by name (one delivery shape for every transport). */
export interface ServerToClientEvents {
  event: (msg: WireDelivery & { subscription: string }) => void;
  gap: (msg: GapNotice & { subscription: string }) => void;
  closing: (msg: { reason: CloseReason; cursor?: string }) => void;
}

type Ack = (answer: object) => void;

export interface ClientToServerEvents {
  subscribe: (req: unknown, ack?: Ack) => void;
  unsubscribe: (req: unknown, ack?: Ack) => void;
}

interface SocketData {
  principal: Principal;
  /** Set once the connection holds a slot (connection-registry.ts). */
  release?: () => void;
  conn?: SocketConnection;
}

/**
 * The payload and the ack of a client message; `emit('subscribe', ack)` sends the ack as the only argument.
 * The ack goes out after the deliveries queued before it (socket-outbox.ts).
 */
function payloadAndAck(outbox: SocketOutbox, payload: unknown, ack: unknown): [unknown, Ack] {
  if (ack === undefined && typeof payload === 'function') [payload, ack] = [undefined, payload];
  if (typeof ack !== 'function') return [payload, noAck];
  return [
    payload,
    (answer) => {
      outbox.flush();
      (ack as Ack)(answer);
    },
  ];
}

const noAck: Ack = () => undefined;

/**
 * Gives the socket's slot back when its transport closes, and says whether it has. Made here rather than in the
 * handshake middleware: a listener made there would keep the middleware's whole scope alive for the connection.
 */
function watchClose(socket: HsSocket): { closed: boolean } {
  const state = { closed: socket.conn.readyState !== 'open' };
  socket.conn.once('close', () => {
    state.closed = true;
    socket.data.release?.();
  });
  return state;
}

type HsSocket = Socket<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;
type HsServer = Server<ClientToServerEvents, ServerToClientEvents, Record<string, never>, SocketData>;

@WebSocketGateway()
export class SocketGateway implements OnGatewayInit, OnGatewayConnection {
  private server?: HsServer;
  /** Transport connections with a socket connected or being authenticated. */
  private readonly claimed = new WeakSet<object>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: Authenticator,
    private readonly hub: FanoutHub,
    private readonly connections: ConnectionRegistry,
    private readonly lifecycle: Lifecycle,
    @Inject(APP_LOGGER) private readonly log: AppLogger,
  ) {}

  afterInit(server: HsServer): void {
    this.server = server;
    server.use((socket, next) => {
      if (this.lifecycle.draining) return next(new Error('shutdown'));
      const { headers, address } = socket.handshake;
      if (!originAllowed(headers.origin, this.config.server.allowedOrigins)) return next(new Error('forbidden'));
      // socket.io would open a socket for every CONNECT packet on one transport connection: one slot per connection.
      const conn = socket.conn;
      if (this.claimed.has(conn)) return next(new Error('limit_exceeded'));
      this.claimed.add(conn);
      const refuse = (err: Error) => {
        this.claimed.delete(conn);
        next(err);
      };
      // The client may go away while its token is verified. socket.io then drops the socket without `disconnect`,
      // so the slot is tied to the transport's own close, which always fires, and taken only while it is open.
      const gone = watchClose(socket);
      const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      this.auth
        .authenticate(token)
        .then((principal) => {
          // socket.io discards a socket whose transport closed; `next` still has to run to forget it.
          if (gone.closed || conn.readyState !== 'open') return refuse(new Error('unauthorized'));
          // Nothing to read without credentials: refuse now rather than hold a slot for a client that can do nothing.
          if (principal.kind === 'anonymous' && principal.subscribe.length === 0) {
            return refuse(new Error('unauthorized'));
          }
          const ip = clientAddress(address, headers, this.config.server.trustedProxyHeader);
          const slot = this.connections.acquire('socketio', { anonymous: principal.kind === 'anonymous', ip });
          if (typeof slot === 'string') {
            return refuse(Object.assign(new Error('limit_exceeded'), { data: { limit: slot } }));
          }
          socket.data.principal = principal;
          socket.data.release = slot;
          next();
        })
        .catch((err: unknown) => {
          if (!(err instanceof AuthError)) this.log.error({ err }, 'socket.io handshake failed');
          refuse(new Error('unauthorized'));
        });
    });
    this.lifecycle.onShutdown(() => this.closeAll('shutdown'));
  }

  handleConnection(socket: HsSocket): void {
    const conn = new SocketConnection(socket, this);
    socket.data.conn = conn;
    // Every incoming message spends from the connection's budget before any handler runs (unknown events too).
    socket.use((packet, next) => conn.admit(packet, next));
    // Shared handlers (the socket is `this`): no closures per connection.
    socket.on('subscribe', onSubscribe);
    socket.on('unsubscribe', onUnsubscribe);
    socket.once('disconnect', onDisconnect);
  }

  /** @internal What a connection's handlers need from the gateway. */
  subscribeOn(conn: SocketConnection, args: unknown[]): void {
    const [payload, reply] = payloadAndAck(conn.outbox, args[0], args[1]);
    const req = parseSocketSubscribe(payload);
    if (!req) return reply({ ok: false, error: 'invalid_request' });
    if (conn.subscriptions() + conn.pending >= this.config.limits.subscriptionsPerConnection) {
      return reply({ ok: false, error: 'limit_exceeded' });
    }
    const refused = checkSubscribeRequest(conn.principal, req, this.config.limits);
    if (refused) return reply({ ok: false, error: refused });
    const id = `s${++conn.lastId}`;
    const sink = conn.outbox.sink(id);
    conn.pending++;
    this.hub.subscribe(req, sink).then(
      (sub) => {
        conn.pending--;
        if (!conn.socket.connected) return sub.close();
        conn.add(id, sub);
        reply({ ok: true, id, cursor: sub.startCursor });
        sub.begin();
      },
      (err: unknown) => {
        conn.pending--;
        if (err instanceof SubscribeError) return reply({ ok: false, error: err.code });
        this.log.error({ err }, 'subscribe failed');
        reply({ ok: false, error: 'unavailable' });
      },
    );
  }

  /** @internal A connection's own per-message budget, from the configured limits. */
  newLimiter(): MessageRateLimiter {
    return new MessageRateLimiter(this.config.limits.messagesPerSecond, this.config.limits.messageBurst);
  }

  /** @internal The transport connection may claim a slot again. */
  forget(transportConn: object): void {
    this.claimed.delete(transportConn);
  }

  /**
   * Says why, disconnects, and waits (bounded) until each connection has flushed and closed, so the
   * `closing` message and the disconnect packet reach clients before the process goes away.
   */
  private async closeAll(reason: CloseReason, flushMs = 2_000): Promise<void> {
    const closed: Promise<void>[] = [];
    for (const socket of this.server?.sockets.sockets.values() ?? []) {
      closed.push(new Promise<void>((resolve) => socket.conn.once('close', () => resolve())));
      socket.data.conn?.outbox.flush();
      socket.emit('closing', { reason });
      socket.disconnect(true);
    }
    if (closed.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((r) => (timer = setTimeout(r, flushMs)))]);
    clearTimeout(timer);
  }
}

/**
 * One Socket.IO connection's state: its subscriptions (ids count per connection, s1, s2, …, so clients that
 * subscribed alike get byte-identical packets), its outbox, its message budget and its token timer. A class with
 * shared handlers rather than closures per connection: an idle connection's size is what limits how many one
 * process holds.
 */
class SocketConnection {
  readonly principal: Principal;
  readonly outbox: SocketOutbox;
  lastId = 0;
  /**
   * Subscribes handed to the hub but not answered yet: they count against the limit too, or a burst of
   * subscribes sent before the first ack would all pass the check.
   */
  pending = 0;
  /** Created on the first subscribe. */
  private subs: Map<string, Subscription> | null = null;
  private closed = false;
  private readonly limiter: MessageRateLimiter;
  private cancelExpiry: (() => void) | undefined;

  constructor(
    readonly socket: HsSocket,
    readonly gateway: SocketGateway,
  ) {
    this.principal = socket.data.principal;
    this.outbox = new SocketOutbox(socket);
    this.limiter = gateway.newLimiter();
    this.outbox.onSlowConsumer(() => this.close('slow_consumer'));
    if (this.principal.expiresAtMs !== undefined) {
      this.cancelExpiry = armTokenExpiry(this.principal.expiresAtMs, () => this.close('token_expired'));
    }
  }

  subscriptions(): number {
    return this.subs?.size ?? 0;
  }

  add(id: string, sub: Subscription): void {
    (this.subs ??= new Map()).set(id, sub);
  }

  unsubscribe(args: unknown[]): void {
    const [payload, reply] = payloadAndAck(this.outbox, args[0], args[1]);
    const id = (payload as { id?: unknown } | null)?.id;
    if (typeof id !== 'string') return reply({ ok: false, error: 'invalid_request' });
    this.subs?.get(id)?.close();
    this.subs?.delete(id);
    reply({ ok: true });
  }

  /** Spends from the message budget: the packet passes, is refused (acked `limit_exceeded`), or the client is closed. */
  admit(packet: unknown[], next: (err?: Error) => void): void {
    const verdict: RateVerdict = this.limiter.take();
    if (verdict === 'allow') return next();
    if (verdict === 'disconnect') return this.close('rate_limited');
    const ack: unknown = packet[packet.length - 1];
    if (typeof ack === 'function') (ack as Ack)({ ok: false, error: 'limit_exceeded' });
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    const only = this.subs?.size === 1 ? [...this.subs.values()][0].cursor : undefined;
    // The cursor counts every delivery handed to the outbox: they must reach the client before it closes.
    this.outbox.flush();
    this.socket.emit('closing', { reason, ...(only ? { cursor: only } : {}) });
    this.socket.disconnect(true);
  }

  disconnected(): void {
    this.cancelExpiry?.();
    this.cancelExpiry = undefined;
    if (this.subs) for (const sub of this.subs.values()) sub.close();
    this.subs = null;
    this.socket.data.release?.();
    this.gateway.forget(this.socket.conn);
  }
}

function onSubscribe(this: HsSocket, ...args: unknown[]): void {
  const conn = this.data.conn;
  if (conn) conn.gateway.subscribeOn(conn, args);
}

function onUnsubscribe(this: HsSocket, ...args: unknown[]): void {
  this.data.conn?.unsubscribe(args);
}

function onDisconnect(this: HsSocket): void {
  this.data.conn?.disconnected();
}
