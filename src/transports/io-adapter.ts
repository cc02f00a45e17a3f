/**
 * Socket.IO server options: WebSocket only unless long-polling is configured (polling needs sticky
 * sessions behind a load balancer), no per-message compression (CPU and memory per socket), messages no
 * larger than the largest valid client message (socket.io parses a message before any handler or rate limit
 * sees it), and CORS without credentials: clients send their token in the handshake, never as a cookie.
 */
import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { Server, ServerOptions } from 'socket.io';
import type { AppConfig } from '../config/app-config.js';
import { MAX_PATTERN_LENGTH } from '../events/pattern.js';
import { HandshakeCorkingServer, sessionId } from './socket-handshake.js';

/** Room for the packet framing, the ack id and a `cursor` or `from` beside the patterns. */
const SUBSCRIBE_OVERHEAD = 1024;
/** Also holds the handshake's `auth.token` (a JWT with a long `subscribe` claim). */
const MIN_MESSAGE_BYTES = 64 * 1024;

/**
 * The largest message a client may send: a `subscribe` with `limits.patternsPerSubscription` patterns of the
 * longest valid length (quoted, comma-separated), or 64 KB, whichever is more. Larger ones close the connection.
 */
export function socketMessageLimit(limits: AppConfig['limits']): number {
  const subscribe = limits.patternsPerSubscription * (MAX_PATTERN_LENGTH + 3) + SUBSCRIBE_OVERHEAD;
  return Math.max(MIN_MESSAGE_BYTES, subscribe);
}

export class HookstreamIoAdapter extends IoAdapter {
  constructor(
    app: INestApplicationContext,
    private readonly config: AppConfig,
  ) {
    super(app);
  }

  /**
   * Nest builds a disconnect observable for every socket even when the gateway has no message handlers (ours
   * registers its own listeners): with none, nothing is bound, which saves that per idle connection.
   */
  override bindMessageHandlers(...args: Parameters<IoAdapter['bindMessageHandlers']>): void {
    if (args[1].length === 0) return;
    super.bindMessageHandlers(...args);
  }

  /**
   * Nest ties a `disconnect` listener (a once-wrapper and two closures) to every socket, kept while it is
   * connected, to feed gateways' `handleDisconnect`. Ours has none: SocketConnection listens itself
   * (socket-connection.ts), so nothing is bound. A gateway that implements OnGatewayDisconnect must drop this.
   */
  override bindClientDisconnect(): void {}

  override createIOServer(port: number, options?: Partial<ServerOptions>): Server {
    const { allowedOrigins } = this.config.server;
    const server = super.createIOServer(port, {
      ...(options as ServerOptions),
      path: '/socket.io',
      transports: this.config.socketio.polling ? ['polling', 'websocket'] : ['websocket'],
      perMessageDeflate: false,
      serveClient: false,
      maxHttpBufferSize: socketMessageLimit(this.config.limits),
      // The 101 answer and engine.io's `open` packet in one write (socket-handshake.ts).
      wsEngine: HandshakeCorkingServer,
      // The allow-list only shapes the CORS answer for long-polling; the handshake checks Origin itself
      // (socket.gateway.ts), since browsers apply no CORS to WebSockets.
      cors: { origin: allowedOrigins ?? '*', credentials: false },
    }) as Server;
    server.engine.generateId = sessionId;
    return server;
  }
}
