/**
 * Socket.IO transport: protocol only. Authentication and the connection slot happen in the handshake; each
 * connected socket gets a SocketConnection (socket-connection.ts), which hands subscriptions to the fan-out hub,
 * and the hub writes through a per-subscription sink.
 */
import { Inject } from '@nestjs/common';
import { type OnGatewayConnection, type OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { Server } from 'socket.io';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { AuthError, Authenticator, type Principal } from '../auth/auth.service.js';
import { FanoutHub } from '../fanout/fanout-hub.js';
import { APP_LOGGER, type AppLogger } from '../logging/logger.js';
import { Lifecycle } from '../lifecycle.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { CloseReason, HandshakeErrorCode, ServerToClientEvents } from '../protocol/index.js';
import { clientAddress, originAllowed } from './client-address.js';
import { ConnectionRegistry, type ConnectionSlot } from './connection-registry.js';
import {
  type HsSocket,
  type Inbound,
  SocketConnection,
  type SocketData,
  type SocketDeps,
} from './socket-connection.js';

/** Still exported here for code written against the old location; the type lives in the protocol module. */
export type { CloseReason };

/** A refused handshake: the client's `connect_error` carries the code as its message. */
function handshakeError(code: HandshakeErrorCode, data?: object): Error {
  return data ? Object.assign(new Error(code), { data }) : new Error(code);
}

type HsServer = Server<Inbound, ServerToClientEvents, Record<string, never>, SocketData>;
type Transport = HsSocket['conn'];

/** The transport connection's slot, given back when it closes (one shared listener for every connection). */
const SLOT = Symbol('hookstream.slot');
type Holding = Transport & { [SLOT]?: ConnectionSlot };
function releaseOnClose(this: Holding): void {
  const slot = this[SLOT];
  this[SLOT] = undefined;
  slot?.release();
}

@WebSocketGateway()
export class SocketGateway implements OnGatewayInit, OnGatewayConnection {
  private server?: HsServer;
  /** Transport connections with a socket connected or being authenticated. */
  private readonly claimed = new WeakSet<object>();
  private readonly deps: SocketDeps;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: Authenticator,
    hub: FanoutHub,
    private readonly connections: ConnectionRegistry,
    private readonly lifecycle: Lifecycle,
    @Inject(APP_LOGGER) private readonly log: AppLogger,
    metrics: MetricsService,
  ) {
    this.deps = {
      config,
      hub,
      log,
      delivered: metrics.delivered,
      forget: (socket) => this.claimed.delete(socket.conn),
    };
  }

  afterInit(server: HsServer): void {
    this.server = server;
    server.use((socket, next) => {
      if (this.lifecycle.draining) return next(handshakeError('shutdown'));
      const { headers } = socket.handshake;
      if (!originAllowed(headers.origin, this.config.server.allowedOrigins)) return next(handshakeError('forbidden'));
      // socket.io would open a socket for every CONNECT packet on one transport connection: one slot per connection.
      const conn = socket.conn;
      if (this.claimed.has(conn)) return next(handshakeError('limit_exceeded'));
      this.claimed.add(conn);
      const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
      this.auth.authenticate(token).then(
        (principal) => this.admit(socket, principal, next),
        (err: unknown) => {
          if (!(err instanceof AuthError)) this.log.error({ err }, 'socket.io handshake failed');
          this.refuse(socket, next, handshakeError('unauthorized'));
        },
      );
    });
    this.lifecycle.onShutdown(() => this.closeAll('shutdown'));
  }

  /**
   * The token checked out: take a slot, held until the transport connection closes. The client may have gone
   * while its token was verified; socket.io then drops the socket without `disconnect` (and `next` still has
   * to run to forget it), so a slot is only taken while the transport is open, and tied to the transport's own
   * close, which always fires.
   */
  private admit(socket: HsSocket, principal: Principal, next: (err?: Error) => void): void {
    const conn = socket.conn as Holding;
    if (conn.readyState !== 'open') return this.refuse(socket, next, handshakeError('unauthorized'));
    // Nothing to read without credentials: refuse now rather than hold a slot for a client that can do nothing.
    if (principal.kind === 'anonymous' && principal.subscribe.length === 0) {
      return this.refuse(socket, next, handshakeError('unauthorized'));
    }
    const ip = clientAddress(socket.handshake.address, socket.handshake.headers, this.config.server.trustedProxyHeader);
    const slot = this.connections.acquire('socketio', { anonymous: principal.kind === 'anonymous', ip });
    if (typeof slot === 'string') return this.refuse(socket, next, handshakeError('limit_exceeded', { limit: slot }));
    conn[SLOT] = slot;
    conn.on('close', releaseOnClose);
    socket.data.principal = principal;
    socket.data.slot = slot;
    next();
  }

  private refuse(socket: HsSocket, next: (err?: Error) => void, err: Error): void {
    this.claimed.delete(socket.conn);
    next(err);
  }

  handleConnection(socket: HsSocket): void {
    new SocketConnection(socket, socket.data.principal, this.deps);
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
