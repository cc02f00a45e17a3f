/**
 * Socket.IO transport: protocol only. Authentication happens in the handshake,
 * subscriptions are handed to the fan-out hub, and the hub writes through a per-subscription sink.
 */
import { Inject } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { AuthError, Authenticator, type Principal } from '../auth/auth.service.js';
import { FanoutHub } from '../fanout/fanout-hub.js';
import { SubscribeError } from '../fanout/fanout.types.js';
import type { Subscription } from '../fanout/fanout-hub.js';
import { APP_LOGGER, type AppLogger } from '../logging/logger.js';
import { Lifecycle } from '../lifecycle.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type {
  ClientToServerEvents,
  CloseReason,
  HandshakeErrorCode,
  ServerToClientEvents,
  SubscribeAck,
  UnsubscribeAck,
} from '../protocol/index.js';
import { clientAddress, originAllowed } from './client-address.js';
import { ConnectionRegistry } from './connection-registry.js';
import { MessageRateLimiter } from './message-rate-limiter.js';
import { checkSubscribeRequest, parseSocketSubscribe } from './subscribe-request.js';
import { SocketOutbox } from './socket-outbox.js';
import { armTokenExpiry } from './token-expiry.js';

/** Still exported here for code written against the old location; the type lives in the protocol module. */
export type { CloseReason };

/** The client's messages as they arrive: untrusted (any payload, maybe no ack) until parsed. */
type Inbound = { [K in keyof ClientToServerEvents]: (payload: unknown, ack?: unknown) => void };

/** The answer a client message's ack expects, by name. */
type AckOf<K extends keyof ClientToServerEvents> = Parameters<NonNullable<Parameters<ClientToServerEvents[K]>[1]>>[0];

/** A refused handshake: the client's `connect_error` carries the code as its message. */
function handshakeError(code: HandshakeErrorCode, data?: object): Error {
  return data ? Object.assign(new Error(code), { data }) : new Error(code);
}

interface SocketData {
  principal: Principal;
  /** Set once the connection holds a slot (connection-registry.ts). */
  release?: () => void;
  outbox?: SocketOutbox;
}

/**
 * The payload and the ack of a client message; `emit('subscribe', ack)` sends the ack as the only argument.
 * The ack goes out after the deliveries queued before it (socket-outbox.ts).
 */
function payloadAndAck<A>(outbox: SocketOutbox, payload: unknown, ack: unknown): [unknown, (answer: A) => void] {
  if (ack === undefined && typeof payload === 'function') [payload, ack] = [undefined, payload];
  if (typeof ack !== 'function') return [payload, () => undefined];
  return [
    payload,
    (answer) => {
      outbox.flush();
      (ack as (answer: A) => void)(answer);
    },
  ];
}

type HsSocket = Socket<Inbound, ServerToClientEvents, Record<string, never>, SocketData>;
type HsServer = Server<Inbound, ServerToClientEvents, Record<string, never>, SocketData>;

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
    private readonly metrics: MetricsService,
  ) {}

  afterInit(server: HsServer): void {
    this.server = server;
    server.use((socket, next) => {
      if (this.lifecycle.draining) return next(handshakeError('shutdown'));
      const { headers, address } = socket.handshake;
      if (!originAllowed(headers.origin, this.config.server.allowedOrigins)) return next(handshakeError('forbidden'));
      // socket.io would open a socket for every CONNECT packet on one transport connection: one slot per connection.
      const conn = socket.conn;
      if (this.claimed.has(conn)) return next(handshakeError('limit_exceeded'));
      this.claimed.add(conn);
      const refuse = (err: Error) => {
        this.claimed.delete(conn);
        next(err);
      };
      // The client may go away while its token is verified. socket.io then drops the socket without `disconnect`,
      // so the slot is tied to the transport's own close, which always fires, and taken only while it is open.
      let gone = conn.readyState !== 'open';
      conn.once('close', () => {
        gone = true;
        socket.data.release?.();
      });
      const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      this.auth
        .authenticate(token)
        .then((principal) => {
          // socket.io discards a socket whose transport closed; `next` still has to run to forget it.
          if (gone || conn.readyState !== 'open') return refuse(handshakeError('unauthorized'));
          // Nothing to read without credentials: refuse now rather than hold a slot for a client that can do nothing.
          if (principal.kind === 'anonymous' && principal.subscribe.length === 0) {
            return refuse(handshakeError('unauthorized'));
          }
          const ip = clientAddress(address, headers, this.config.server.trustedProxyHeader);
          const slot = this.connections.acquire('socketio', { anonymous: principal.kind === 'anonymous', ip });
          if (typeof slot === 'string') {
            return refuse(handshakeError('limit_exceeded', { limit: slot }));
          }
          socket.data.principal = principal;
          socket.data.release = slot;
          next();
        })
        .catch((err: unknown) => {
          if (!(err instanceof AuthError)) this.log.error({ err }, 'socket.io handshake failed');
          refuse(handshakeError('unauthorized'));
        });
    });
    this.lifecycle.onShutdown(() => this.closeAll('shutdown'));
  }

  handleConnection(socket: HsSocket): void {
    const { principal } = socket.data;
    // Ids count per connection (s1, s2, …): clients that subscribed alike get byte-identical packets.
    const subs = new Map<string, Subscription>();
    let lastId = 0;
    const outbox = new SocketOutbox(socket, this.metrics.delivered);
    socket.data.outbox = outbox;
    // Subscribes handed to the hub but not answered yet: they count against the limit too, or a burst of
    // subscribes sent before the first ack would all pass the check.
    let pending = 0;
    let closed = false;

    const close = (reason: CloseReason) => {
      if (closed) return;
      closed = true;
      const only = subs.size === 1 ? [...subs.values()][0].cursor : undefined;
      // The cursor counts every delivery handed to the outbox: they must reach the client before it closes.
      outbox.flush();
      socket.emit('closing', { reason, ...(only ? { cursor: only } : {}) });
      socket.disconnect(true);
    };
    outbox.onSlowConsumer(() => close('slow_consumer'));
    const cancelExpiry = armTokenExpiry(principal.expiresAtMs, () => close('token_expired'));

    // Every incoming message spends from the connection's budget before any handler runs (unknown events too).
    const limiter = new MessageRateLimiter(this.config.limits.messagesPerSecond, this.config.limits.messageBurst);
    socket.use((packet, next) => {
      const verdict = limiter.take();
      if (verdict === 'allow') return next();
      if (verdict === 'disconnect') return close('rate_limited');
      const ack: unknown = packet[packet.length - 1];
      const refused: SubscribeAck & UnsubscribeAck = { ok: false, error: 'limit_exceeded' };
      if (typeof ack === 'function') (ack as (answer: typeof refused) => void)(refused);
    });

    socket.on('subscribe', (...args) => {
      const [payload, reply] = payloadAndAck<AckOf<'subscribe'>>(outbox, ...args);
      const req = parseSocketSubscribe(payload);
      if (!req) return reply({ ok: false, error: 'invalid_request' });
      if (subs.size + pending >= this.config.limits.subscriptionsPerConnection) {
        return reply({ ok: false, error: 'limit_exceeded' });
      }
      const refused = checkSubscribeRequest(principal, req, this.config.limits);
      if (refused) return reply({ ok: false, error: refused });
      const id = `s${++lastId}`;
      const sink = outbox.sink(id);
      pending++;
      this.hub.subscribe(req, sink).then(
        (sub) => {
          pending--;
          if (!socket.connected) return sub.close();
          subs.set(id, sub);
          reply({ ok: true, id, cursor: sub.startCursor });
          sub.begin();
        },
        (err: unknown) => {
          pending--;
          if (err instanceof SubscribeError) return reply({ ok: false, error: err.code });
          this.log.error({ err }, 'subscribe failed');
          reply({ ok: false, error: 'unavailable' });
        },
      );
    });

    socket.on('unsubscribe', (...args) => {
      const [payload, reply] = payloadAndAck<AckOf<'unsubscribe'>>(outbox, ...args);
      const id = (payload as { id?: unknown } | null)?.id;
      if (typeof id !== 'string') return reply({ ok: false, error: 'invalid_request' });
      subs.get(id)?.close();
      subs.delete(id);
      reply({ ok: true });
    });

    socket.once('disconnect', () => {
      cancelExpiry();
      for (const sub of subs.values()) sub.close();
      subs.clear();
      socket.data.release?.();
      this.claimed.delete(socket.conn);
    });
  }

  /**
   * Says why, disconnects, and waits (bounded) until each connection has flushed and closed, so the
   * `closing` message and the disconnect packet reach clients before the process goes away.
   */
  private async closeAll(reason: CloseReason, flushMs = 2_000): Promise<void> {
    const closed: Promise<void>[] = [];
    for (const socket of this.server?.sockets.sockets.values() ?? []) {
      closed.push(new Promise<void>((resolve) => socket.conn.once('close', () => resolve())));
      socket.data.outbox?.flush();
      socket.emit('closing', { reason });
      socket.disconnect(true);
    }
    if (closed.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise((r) => (timer = setTimeout(r, flushMs)))]);
    clearTimeout(timer);
  }
}
