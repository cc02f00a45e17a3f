/**
 * What one open SSE stream holds (its connection slot, its subscription, its token timer, its place in the shared
 * keep-alive and shutdown list), given back once by `release()`. A class with shared prototype methods rather than
 * closures: an idle connection's size is what limits how many one process holds, so nothing per stream is
 * allocated that could be shared (the response's `close` listener is one function for every stream).
 */
import type { ServerResponse } from 'node:http';
import type { Subscription } from '../fanout/fanout-hub.js';
import type { CloseReason } from '../protocol/index.js';
import type { ConnectionSlot } from './connection-registry.js';
import type { SharedTicker } from './keepalive.js';
import { SseOutbox } from './sse-outbox.js';
import type { SlowConsumerCloser } from './turn-outbox.js';
import { sseFrame } from './sse-frame.js';
import { armTokenExpiry } from './token-expiry.js';

/** Frames every stream sends alike, built once. */
const KEEPALIVE_FRAME = sseFrame({ comment: 'keep-alive' });

/** The response's own slot for its connection, so one `close` listener serves every stream. */
const CONNECTION = Symbol('hookstream.sseConnection');
type Tagged = ServerResponse & { [CONNECTION]?: SseConnection };

function releaseOnClose(this: Tagged): void {
  this[CONNECTION]?.release();
}

export class SseConnection implements SlowConsumerCloser {
  /** The response has closed: anything acquired from now on is given back at once. */
  gone = false;
  readonly outbox: SseOutbox;
  private slot: ConnectionSlot | undefined;
  private sub: Subscription | undefined;
  private cancelExpiry: (() => void) | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly open: SharedTicker<SseConnection>,
    delivered: { sse: number },
  ) {
    this.outbox = new SseOutbox(res, delivered);
    (res as Tagged)[CONNECTION] = this;
    res.once('close', releaseOnClose);
  }

  /** Holds the slot; false (and the slot given back) when the client has already left. */
  holdSlot(slot: ConnectionSlot): boolean {
    this.slot = slot;
    if (this.gone) this.release();
    return !this.gone;
  }

  holdSubscription(sub: Subscription): boolean {
    this.sub = sub;
    if (this.gone) this.release();
    return !this.gone;
  }

  /** The stream is open: keep-alives, slow-consumer and token-expiry closing, shutdown notice. */
  start(expiresAtMs: number | undefined): void {
    this.open.add(this);
    this.outbox.onSlowConsumer(this);
    if (expiresAtMs !== undefined) this.cancelExpiry = armTokenExpiry(expiresAtMs, () => this.close('token_expired'));
  }

  closeSlowConsumer(): void {
    this.close('slow_consumer');
  }

  ping(): void {
    this.outbox.write(KEEPALIVE_FRAME);
  }

  close(reason: CloseReason): void {
    this.outbox.write(sseFrame({ event: 'closing', data: JSON.stringify({ reason }) }));
    this.outbox.flush();
    this.res.end();
  }

  /** Gives back everything held, latest first; safe to call more than once. */
  release(): void {
    this.gone = true;
    this.open.delete(this);
    const { cancelExpiry, sub, slot } = this;
    this.cancelExpiry = this.sub = this.slot = undefined;
    cancelExpiry?.();
    sub?.close();
    slot?.release();
  }
}
