/**
 * The one place that relies on engine.io and ws internals for Socket.IO fan-out speed, and checks them at boot.
 *
 * What is relied on, and why: a delivery goes to 1,000 clients as ONE pre-built WebSocket frame (ws's
 * `Sender.frame`, which `@types/ws` does not declare) handed to engine.io as `wsPreEncodedFrame`, which its
 * WebSocket transport writes through the private `socket._sender.sendFrame`; and a client's backlog is read
 * from engine.io's private `writeBuffer`. Socket.IO's own broadcasts use the same frame path.
 *
 * The check runs once, when this module loads: it frames a probe with ws, and drives engine.io's WebSocket
 * transport class with a stand-in socket to see that a `wsPreEncodedFrame` packet is written as is through
 * `_sender.sendFrame`. If anything changed, `sendsPreEncoded()` answers false for every connection, so every
 * packet is written as a plain engine.io message (what `socket.emit` writes), and bootstrap logs a warning.
 * `prebuilt-frames.spec.ts` fails in that case, so an upgrade that breaks the fast path is seen in CI.
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Socket } from 'socket.io';
import * as ws from 'ws';

export interface PrebuiltFrameSupport {
  ok: boolean;
  /** What failed, for the boot warning; empty when ok. */
  problems: string[];
}

/** What the check inspects; the installed modules by default, stand-ins in tests. */
export interface FrameInternals {
  /** ws's Sender class (its static `frame`). */
  Sender: unknown;
  /** engine.io's WebSocket transport class. */
  WebSocketTransport: unknown;
  /** engine.io's Socket class (the connection). */
  EngineSocket: unknown;
}

type FrameFn = (data: Buffer, options: object) => readonly Buffer[];

// The engine.io that socket.io itself loads (it is socket.io's dependency, not ours).
const fromSocketIo = createRequire(createRequire(import.meta.url).resolve('socket.io'));
const engineIo = fromSocketIo('engine.io') as { transports: { websocket: unknown }; Socket: unknown };

export function installedInternals(): FrameInternals {
  return {
    Sender: (ws as unknown as { Sender?: unknown }).Sender,
    WebSocketTransport: engineIo.transports.websocket,
    EngineSocket: engineIo.Socket,
  };
}

const FRAME_OPTIONS = { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true };

export function checkPrebuiltFrames(internals: FrameInternals = installedInternals()): PrebuiltFrameSupport {
  const problems: string[] = [];
  const frame = (internals.Sender as { frame?: FrameFn } | undefined)?.frame;
  if (typeof frame !== 'function') problems.push('ws no longer exports Sender.frame');
  else {
    // A server's text frame: FIN + opcode 1, unmasked length 2, then the bytes.
    const bytes = Buffer.concat(frame(Buffer.from('4x'), FRAME_OPTIONS));
    if (!bytes.equals(Buffer.from([0x81, 0x02, 0x34, 0x78]))) {
      problems.push(`ws Sender.frame built ${bytes.toString('hex')} for a 2-byte text frame, not 81023478`);
    }
  }
  problems.push(...checkTransport(internals.WebSocketTransport));
  const socketSource = typeof internals.EngineSocket === 'function' ? String(internals.EngineSocket) : '';
  if (!/\bthis\.writeBuffer\s*=\s*\[\]/.test(socketSource)) {
    problems.push("engine.io's Socket no longer keeps its queued packets in writeBuffer");
  }
  return { ok: problems.length === 0, problems };
}

/** Sends one pre-encoded packet through the transport class over a stand-in ws socket, and sees where it goes. */
function checkTransport(Transport: unknown): string[] {
  if (typeof Transport !== 'function') return ['engine.io no longer exports its WebSocket transport'];
  const sent: unknown[] = [];
  const socket = Object.assign(new EventEmitter(), {
    _sender: { sendFrame: (frame: unknown) => sent.push(frame) },
    send: () => sent.push('encoded again'),
  });
  const preEncoded = [Buffer.from([0x81, 0x02, 0x34, 0x78])];
  try {
    const transport = new (
      Transport as new (req: object) => { send(packets: object[]): void; perMessageDeflate?: unknown }
    )({ websocket: socket, _query: { EIO: '4' } });
    transport.perMessageDeflate = null;
    transport.send([{ type: 'message', data: 'x', options: { wsPreEncodedFrame: preEncoded } }]);
  } catch (err) {
    return [`engine.io's WebSocket transport failed the probe: ${(err as Error).message}`];
  }
  if (sent.length !== 1 || sent[0] !== preEncoded) {
    return ["engine.io's WebSocket transport no longer writes wsPreEncodedFrame through _sender.sendFrame"];
  }
  return [];
}

let support: PrebuiltFrameSupport | undefined;

/** The boot check's verdict, computed once. */
export function prebuiltFrameSupport(): PrebuiltFrameSupport {
  return (support ??= checkPrebuiltFrames());
}

interface EngineTransport {
  name: string;
  perMessageDeflate?: unknown;
  socket?: { _sender?: { sendFrame?: unknown }; readyState?: unknown };
}

/** ws's WebSocket.OPEN. */
const WS_OPEN = 1;

/**
 * Whether nothing written to the connection can reach the client any more: socket.io has disconnected it, or its
 * WebSocket is past OPEN (the close handshake ran and the TCP socket was ended). engine.io writes a pre-encoded
 * frame straight through `_sender.sendFrame`, which, unlike ws's send(), does not look at the WebSocket's state:
 * a batch written to the ended socket failed as a write after end, and Node built that error's stack trace. A
 * reconnect storm closes thousands of connections with deliveries queued for them in the same turn.
 */
export function connectionGone(socket: Socket): boolean {
  if (!socket.connected) return true;
  const state = (socket.conn.transport as unknown as EngineTransport).socket?.readyState;
  return typeof state === 'number' && state !== WS_OPEN;
}

/**
 * Whether engine.io will send this connection's `wsPreEncodedFrame` as is: the boot check passed, and the same
 * test engine.io's WebSocket transport makes (`_canSendPreEncodedFrame`) holds now. A batch must only be written
 * when it holds, or all but its first event would be sent as the packet's text alone.
 */
export function sendsPreEncoded(socket: Socket, verdict: PrebuiltFrameSupport = prebuiltFrameSupport()): boolean {
  if (!verdict.ok) return false;
  const t = socket.conn.transport as unknown as EngineTransport;
  return t.name === 'websocket' && !t.perMessageDeflate && typeof t.socket?._sender?.sendFrame === 'function';
}

/** Packets engine.io still holds for this connection (its transport has not taken them yet). */
export function heldPackets(socket: Socket): number {
  const buffer = (socket.conn as unknown as { writeBuffer?: unknown }).writeBuffer;
  return Array.isArray(buffer) ? buffer.length : 0;
}
