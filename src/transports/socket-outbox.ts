/**
 * What the fan-out hub writes to one Socket.IO connection, shared by all of its subscriptions: pre-encoded
 * `event` packets (delivery-encoding.ts), gap notices in order with them, and the backlog the hub bounds.
 * Deliveries are queued and written once per event-loop turn (tick-batcher.ts), or when a corked catch-up
 * page ends: over WebSocket, a queue of several events goes out as ONE engine.io write holding all their
 * frames back to back, so 512 events cost one socket write instead of 512 (each its own writev).
 *
 * Anything else sent on the socket (acks, `closing`) must call flush() first, so it never overtakes events.
 */
import type { Socket } from 'socket.io';
import type { DeliverySink, GapNotice } from '../fanout/fanout.types.js';
import { type SocketEventPacket, socketEventPacket } from './delivery-encoding.js';
import { type Flushable, tickBatcher } from './tick-batcher.js';

interface EngineTransport {
  name: string;
  perMessageDeflate?: unknown;
  socket?: { _sender?: { sendFrame?: unknown } };
}

/**
 * Whether engine.io will send `wsPreEncodedFrame` as is: the same test engine.io's WebSocket transport makes
 * (`_canSendPreEncodedFrame`). A batch must only be written when it holds, or all but its first event would
 * be sent as the packet's text alone.
 */
function sendsPreEncoded(socket: Socket): boolean {
  const t = socket.conn.transport as unknown as EngineTransport;
  return t.name === 'websocket' && !t.perMessageDeflate && typeof t.socket?._sender?.sendFrame === 'function';
}

export class SocketOutbox implements Flushable {
  /** Events written in batches that the transport has not flushed yet. */
  private inFlight = 0;
  /** Deliveries not yet handed to engine.io. */
  private queued: SocketEventPacket[] = [];
  /** Whether the tick batcher will flush us this turn. */
  private marked = false;
  private depth = 0;
  private waiters: (() => void)[] = [];

  constructor(private readonly socket: Socket) {
    socket.conn.on('drain', () => this.wake());
  }

  /** A DeliverySink for the subscription with this (per-connection) id. */
  sink(id: string): DeliverySink {
    return {
      send: (d) => this.send(socketEventPacket(id, d)),
      gap: (n) => this.gap(id, n),
      backlog: () => this.backlog(),
      onceDrained: (cb) => this.onceDrained(cb),
      cork: () => this.depth++,
      uncork: () => {
        if (this.depth > 0 && --this.depth === 0) this.flush();
      },
    };
  }

  /** Hands every queued delivery to engine.io now. */
  flush(): void {
    this.marked = false;
    const packets = this.queued;
    if (packets.length === 0) return;
    this.queued = [];
    if (packets.length === 1 || !sendsPreEncoded(this.socket)) {
      for (const p of packets) this.write(p);
      return;
    }
    const frames: Buffer[] = [];
    for (const p of packets) for (const b of p.frame) frames.push(b);
    const n = packets.length;
    this.inFlight += n;
    // The packet text is only what engine.io would send if it could not use the frame (checked above).
    this.socket.conn.write(packets[0].packet, { wsPreEncodedFrame: [Buffer.concat(frames)] } as object, () => {
      this.inFlight -= n;
      this.wake();
    });
  }

  private send(p: SocketEventPacket): void {
    this.queued.push(p);
    if (this.depth === 0 && !this.marked) {
      this.marked = true;
      tickBatcher.mark(this);
    }
  }

  private gap(id: string, notice: GapNotice): void {
    // After everything queued before it: a gap notice must never overtake the events it follows.
    this.flush();
    this.socket.emit('gap', { subscription: id, ...notice });
  }

  /** Packets engine.io still holds (its transport has not taken the previous batch) + batched + queued events. */
  private backlog(): number {
    const held = (this.socket.conn as unknown as { writeBuffer: unknown[] }).writeBuffer.length;
    return held + this.inFlight + this.queued.length;
  }

  private onceDrained(cb: () => void): void {
    if (this.backlog() === 0) setImmediate(cb);
    else this.waiters.push(cb);
  }

  private wake(): void {
    if (this.waiters.length === 0 || this.backlog() > 0) return;
    for (const cb of this.waiters.splice(0)) cb();
  }

  /** One packet on the same engine.io queue as emit(); over WebSocket, its shared pre-built frame as is. */
  private write(p: SocketEventPacket): void {
    if (sendsPreEncoded(this.socket)) this.socket.conn.write(p.packet, { wsPreEncodedFrame: p.frame } as object);
    else this.socket.conn.write(p.packet);
  }
}
