/**
 * What one SSE response is sent: frames queued and written once per event-loop turn (tick-batcher.ts) or
 * when a corked catch-up page ends, as one string (one write, one callback) instead of a write per event.
 * The backlog the hub bounds counts frames (and their bytes) not yet flushed to the socket, queued ones included.
 */
import type { ServerResponse } from 'node:http';
import type { DeliverySink, GapNotice, Delivery } from '../fanout/fanout.types.js';
import { sseDeliveryFrame } from './delivery-encoding.js';
import { sseFrame } from './sse-frame.js';
import { TurnOutbox } from './turn-outbox.js';

export class SseOutbox extends TurnOutbox<string> implements DeliverySink {
  /** Frames handed to the response whose write callback has not run yet, and their bytes. */
  private written = 0;
  private writtenBytes = 0;

  /** `counts.sse` counts the deliveries handed to this stream (hookstream_deliveries_total). */
  constructor(
    private readonly res: ServerResponse,
    private readonly counts: { sse: number } = { sse: 0 },
  ) {
    super();
  }

  /** Queues any frame (deliveries, notices, comments) behind what is queued already. */
  write(frame: string): void {
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

  protected sizeOf(frame: string): number {
    return frame.length;
  }

  protected abort(): void {
    this.res.destroy();
  }

  /** One write, one callback, for all the frames of a turn or a catch-up page. */
  protected writeOut(frames: string[]): void {
    const { res } = this;
    if (res.writableEnded || res.destroyed) return;
    const n = frames.length;
    const text = n === 1 ? frames[0] : frames.join('');
    this.written += n;
    this.writtenBytes += text.length;
    res.write(text, () => {
      this.written -= n;
      this.writtenBytes -= text.length;
      this.wake();
    });
  }
}
