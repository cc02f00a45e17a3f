/**
 * What one SSE response is sent: frames queued and written once per event-loop turn (tick-batcher.ts) or
 * when a corked catch-up page ends, as one chunk (one write, one callback) instead of a write per event.
 * The backlog the hub bounds counts frames (and their bytes) not yet flushed to the socket, queued ones included.
 */
import type { ServerResponse } from 'node:http';
import type { DeliverySink, GapNotice, Delivery } from '../fanout/fanout.types.js';
import { sseDeliveryFrame, type SseBytesFrame } from './delivery-encoding.js';
import { givePageBuffer, takePageBuffer } from './page-buffers.js';
import { sseChunk } from './sse-chunk.js';
import { sseFrame } from './sse-frame.js';
import { TurnOutbox } from './turn-outbox.js';

/** A frame: text (notices, comments, live deliveries), or a catch-up page's delivery (its stored bytes). */
type Frame = string | SseBytesFrame;

export class SseOutbox extends TurnOutbox<Frame> implements DeliverySink {
  /** Frames handed to the response whose write callback has not run yet, and their bytes. */
  private written = 0;
  private writtenBytes = 0;
  /** Text chunks go straight to the socket (set after the first completed response write; see writeRaw). */
  private raw = false;

  /** `counts.sse` counts the deliveries handed to this stream (hookstream_deliveries_total). */
  constructor(
    private readonly res: ServerResponse,
    private readonly counts: { sse: number } = { sse: 0 },
  ) {
    super();
  }

  /** Queues any frame (deliveries, notices, comments) behind what is queued already. */
  write(frame: Frame): void {
    this.enqueue(frame);
  }

  send(d: Delivery): void {
    this.counts.sse++;
    this.write(sseDeliveryFrame(d));
  }

  gap(n: GapNotice): void {
    this.write(sseFrame({ event: 'gap', data: JSON.stringify(n) }));
  }

  protected inTransit(): number {
    return this.written;
  }

  protected bytesInTransit(): number {
    return this.writtenBytes;
  }

  protected sizeOf(frame: Frame): number {
    return frame.length;
  }

  protected abort(): void {
    this.res.destroy();
  }

  /** One write, one callback, for all the frames of a turn or a catch-up page. */
  protected writeOut(frames: Frame[]): void {
    const { res } = this;
    if (res.writableEnded || res.destroyed) return;
    const n = frames.length;
    if (this.raw && allText(frames)) return this.writeRaw(frames as string[]);
    const chunk = n === 1 && typeof frames[0] === 'string' ? frames[0] : joinFrames(frames);
    const size = chunk.length;
    this.written += n;
    this.writtenBytes += size;
    res.write(chunk, () => {
      if (typeof chunk !== 'string') givePageBuffer(chunk);
      // Written: the headers are on the socket, so further chunks may go straight to it (see writeRaw).
      if (!this.raw) this.raw = (res as { chunkedEncoding?: boolean }).chunkedEncoding === true;
      this.written -= n;
      this.writtenBytes -= size;
      this.wake();
    });
  }

  /**
   * Text frames as one chunk (sse-chunk.ts) written to the socket itself: the same buffer for every stream that is
   * sent the same frames. Only once a response write has completed (the headers went before it) and only on a
   * chunked response, so the bytes on the wire are what `res.write` would send, in the same order.
   */
  private writeRaw(frames: string[]): void {
    const socket = this.res.socket;
    if (!socket || socket.destroyed) return;
    const n = frames.length;
    let size = 0;
    for (const f of frames) size += f.length;
    this.written += n;
    this.writtenBytes += size;
    socket.write(sseChunk(frames), () => {
      this.written -= n;
      this.writtenBytes -= size;
      this.wake();
    });
  }
}

function allText(frames: Frame[]): boolean {
  for (const f of frames) if (typeof f !== 'string') return false;
  return true;
}

/**
 * Frames as one chunk: text joined when all are text, else one buffer (page-buffers.ts: given back once
 * written) with every frame's bytes.
 */
function joinFrames(frames: Frame[]): string | Buffer {
  if (frames.every((f) => typeof f === 'string')) return (frames as string[]).join('');
  let size = 0;
  for (const f of frames) size += typeof f === 'string' ? Buffer.byteLength(f) : f.length;
  const out = takePageBuffer(size);
  let o = 0;
  for (const f of frames) o = typeof f === 'string' ? o + out.write(f, o) : f.writeTo(out, o);
  return out;
}
