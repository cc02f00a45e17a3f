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
import type { Delivery, DeliverySink, GapNotice } from '../fanout/fanout.types.js';
import { batchFrames, type SocketEventPacket, socketEventPacket } from './delivery-encoding.js';
import { givePageBuffer } from './page-buffers.js';
import { connectionGone, heldPackets, sendsPreEncoded } from './prebuilt-frames.js';
import { TurnOutbox } from './turn-outbox.js';

/** One subscription's view of its connection's outbox. A class, not closures: idle connections are counted in bytes. */
class OutboxSink implements DeliverySink {
  constructor(
    private readonly outbox: SocketOutbox,
    private readonly id: string,
  ) {}
  send(d: Delivery): void {
    this.outbox.send(socketEventPacket(this.id, d));
  }
  gap(n: GapNotice): void {
    this.outbox.gap(this.id, n);
  }
  backlog(): number {
    return this.outbox.backlog();
  }
  backlogBytes(): number {
    return this.outbox.backlogBytes();
  }
  /** Every subscription of the connection shares its outbox: replay slots are shared per connection. */
  get owner(): object {
    return this.outbox;
  }
  slowConsumer(): void {
    this.outbox.slowConsumer();
  }
  onceDrained(cb: () => void): void {
    this.outbox.onceDrained(cb);
  }
  cork(): void {
    this.outbox.cork();
  }
  uncork(): void {
    this.outbox.uncork();
  }
}

export class SocketOutbox extends TurnOutbox<SocketEventPacket> {
  /** Events written in batches that the transport has not flushed yet. */
  private inFlight = 0;
  /** Bytes of every event written (batched or not) whose write callback has not run yet. */
  private inFlightBytes = 0;
  /** Whether a 'drain' listener is registered (only while someone waits). */
  private listening = false;

  /** `counts.socketio` counts the deliveries handed to this connection (hookstream_deliveries_total). */
  constructor(
    private readonly socket: Socket,
    private readonly counts: { socketio: number } = { socketio: 0 },
  ) {
    super();
  }

  /** A DeliverySink for the subscription with this (per-connection) id. */
  sink(id: string): DeliverySink {
    return new OutboxSink(this, id);
  }

  send(p: SocketEventPacket): void {
    this.counts.socketio++;
    this.enqueue(p);
  }

  gap(id: string, notice: GapNotice): void {
    // After everything queued before it: a gap notice must never overtake the events it follows.
    this.flush();
    this.socket.emit('gap', { subscription: id, ...notice });
  }

  /** Packets engine.io still holds (its transport has not taken the previous batch) + batched events. */
  protected inTransit(): number {
    return heldPackets(this.socket) + this.inFlight;
  }

  protected bytesInTransit(): number {
    return this.inFlightBytes;
  }

  protected sizeOf(p: SocketEventPacket): number {
    return p.size;
  }

  /** Cuts the WebSocket (or polling) connection without waiting for engine.io to flush its buffer. */
  protected abort(): void {
    const transport = this.socket.conn.transport as unknown as { socket?: { terminate?: () => void } };
    if (typeof transport.socket?.terminate === 'function') transport.socket.terminate();
    else this.socket.conn.close(true);
  }

  protected writeOut(packets: SocketEventPacket[]): void {
    if (connectionGone(this.socket)) {
      // The client cannot receive them; whoever waits for the backlog to drain need not wait.
      this.wake();
      return;
    }
    if (packets.length === 1 || !sendsPreEncoded(this.socket)) {
      for (const p of packets) this.write(p);
      return;
    }
    const n = packets.length;
    let bytes = 0;
    for (const p of packets) bytes += p.size;
    this.inFlight += n;
    this.inFlightBytes += bytes;
    const batch = batchFrames(packets);
    // The packet text is only what engine.io would send if it could not use the frame (checked above).
    this.socket.conn.write(packets[0].packet, { wsPreEncodedFrame: [batch] } as object, () => {
      givePageBuffer(batch);
      this.inFlight -= n;
      this.inFlightBytes -= bytes;
      this.wake();
    });
  }

  /** engine.io emits 'drain' each time it hands its buffer to the transport; batches call wake() when flushed. */
  protected override watchDrain(): void {
    if (this.listening) return;
    this.listening = true;
    this.socket.conn.once('drain', () => {
      this.listening = false;
      this.wake();
    });
  }

  /** One packet on the same engine.io queue as emit(); over WebSocket, its shared pre-built frame as is. */
  private write(p: SocketEventPacket): void {
    const bytes = p.size;
    this.inFlightBytes += bytes;
    const written = () => {
      this.inFlightBytes -= bytes;
      this.wake();
    };
    if (sendsPreEncoded(this.socket))
      this.socket.conn.write(p.packet, { wsPreEncodedFrame: p.frame } as object, written);
    else this.socket.conn.write(p.packet, {}, written);
  }
}
