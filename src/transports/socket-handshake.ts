/**
 * Per-connection handshake costs of the Socket.IO server that are configuration, not protocol:
 *
 * - The WebSocket server engine.io uses (its `wsEngine` option) holds the upgraded TCP socket corked from the
 *   `101 Switching Protocols` answer until engine.io has queued its `open` packet (one microtask later: engine.io
 *   awaits the session id first). Both leave in one write instead of two: one syscall less on the gateway and
 *   one read less on the client, per connection. If engine.io ever sends the `open` later than that, the
 *   socket is uncorked anyway and the two go out as two writes, as before.
 * - Session ids come from `crypto.randomUUID()` (122 random bits from the CSPRNG, through Node's batched
 *   entropy cache). engine.io's default draws 15 random bytes through a pool that it refills asynchronously,
 *   so a busy event loop falls back to a synchronous `randomBytes()` call for nearly every handshake.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';

export class HandshakeCorkingServer extends WebSocketServer {
  override handleUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    cb: (ws: WebSocket, request: IncomingMessage) => void,
  ): void {
    socket.cork();
    let deferred = false;
    try {
      super.handleUpgrade(req, socket, head, (ws, request) => {
        deferred = true;
        try {
          cb(ws, request);
        } finally {
          // Queued after what engine.io's handshake queued while cb ran, so the `open` packet is written first.
          queueMicrotask(() => socket.uncork());
        }
      });
    } finally {
      // Refused (ws answered with an HTTP error and ended the socket, which flushes) or not accepted here.
      if (!deferred) socket.uncork();
    }
  }
}

/** engine.io's `generateId` hook: a session id per transport connection. */
export function sessionId(): string {
  return randomUUID();
}
