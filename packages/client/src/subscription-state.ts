/**
 * One subscription's position, independent of the transport: where to (re)start, which deliveries are new,
 * what to persist. Pure apart from the injected storage, so the resume and dedupe rules are unit-tested alone.
 */
import { HookstreamError, type Delivery, type GapNotice, type StorageLike, type SubscribeOptions } from './types.js';

export interface StartRequest {
  cursor?: string;
  from?: string;
}

export interface SubscriptionCallbacks {
  onDelivery: (delivery: Delivery) => void;
  /** A callback threw: reported, never allowed to break the stream. */
  onCallbackError: (error: HookstreamError) => void;
}

export class SubscriptionState {
  readonly patterns: readonly string[];
  private position: string | undefined;
  /** Highest seq delivered in the current epoch; undefined until the first delivery or after a gap. */
  private lastSeq: number | undefined;
  /** True while the position came from storage and the gateway has not yet accepted it. */
  private fromStorage = false;
  private settled = false;
  private resolveReady!: () => void;
  private rejectReady!: (err: HookstreamError) => void;
  readonly ready: Promise<void>;
  /** Deliveries dropped as already seen (a resume overlapping what arrived before). */
  duplicatesDropped = 0;
  failed: HookstreamError | undefined;

  constructor(
    patterns: readonly string[],
    private readonly callbacks: SubscriptionCallbacks,
    private readonly options: SubscribeOptions,
    private readonly storage: StorageLike | null,
  ) {
    this.patterns = Object.freeze([...patterns]);
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Nobody has to await `ready`: keep a refusal from surfacing as an unhandled rejection.
    this.ready.catch(() => undefined);
    if (options.cursor !== undefined) {
      this.position = options.cursor;
    } else if (options.persistKey !== undefined) {
      const stored = this.read(options.persistKey);
      if (stored) {
        this.position = stored;
        this.fromStorage = true;
      }
    }
  }

  get cursor(): string | undefined {
    return this.position;
  }

  /** What to ask the gateway for now: the position reached, else the configured start point. */
  startRequest(): StartRequest {
    if (this.position !== undefined) return { cursor: this.position };
    return this.options.from !== undefined ? { from: this.options.from } : {};
  }

  /** The gateway accepted the subscription; `cursor` is the position it starts after. */
  accepted(cursor: string | undefined): void {
    this.fromStorage = false;
    if (typeof cursor === 'string' && cursor !== '') {
      this.position = cursor;
      this.persist();
    }
    if (!this.settled) {
      this.settled = true;
      this.resolveReady();
    }
  }

  /** Hands a delivery on unless it is not newer than the last one seen. Returns whether it was delivered. */
  deliver(delivery: Delivery): boolean {
    if (this.failed || typeof delivery?.seq !== 'number' || typeof delivery.cursor !== 'string') return false;
    if (this.lastSeq !== undefined && delivery.seq <= this.lastSeq) {
      this.duplicatesDropped++;
      return false;
    }
    this.lastSeq = delivery.seq;
    this.position = delivery.cursor;
    try {
      this.callbacks.onDelivery(delivery);
    } catch (err) {
      this.callbacks.onCallbackError(
        new HookstreamError('callback_failed', `the delivery callback threw: ${String(err)}`, this.patterns, {
          cause: err,
        }),
      );
    }
    // Persisted after the callback ran, so a reload never skips an event the page had not yet handled.
    this.persist();
    return true;
  }

  /** A gap notice: a new epoch may restart sequences, so the dedupe mark starts over. */
  gap(notice: GapNotice): void {
    if (this.failed) return;
    this.lastSeq = undefined;
    if (typeof notice?.resumeCursor === 'string') {
      this.position = notice.resumeCursor;
      this.persist();
    }
    try {
      this.options.onGap?.(notice);
    } catch (err) {
      this.callbacks.onCallbackError(
        new HookstreamError('callback_failed', `onGap threw: ${String(err)}`, this.patterns, { cause: err }),
      );
    }
  }

  /**
   * The gateway refused the cursor. A cursor read from storage may be stale or corrupt: forget it and start from
   * `from` instead (returns true: retry). An explicit cursor is the caller's mistake (false: give up).
   */
  forgetStoredCursor(): boolean {
    if (!this.fromStorage) return false;
    this.fromStorage = false;
    this.position = undefined;
    if (this.options.persistKey !== undefined) this.remove(this.options.persistKey);
    return true;
  }

  /** The gateway refused the subscription for good. */
  fail(error: HookstreamError): void {
    if (this.failed) return;
    this.failed = error;
    if (!this.settled) {
      this.settled = true;
      this.rejectReady(error);
    }
    try {
      this.options.onError?.(error);
    } catch {
      // the caller's error handler failing must not hide the original error
    }
  }

  private persist(): void {
    const key = this.options.persistKey;
    if (key === undefined || this.position === undefined || !this.storage) return;
    try {
      this.storage.setItem(key, this.position);
    } catch {
      // quota or privacy mode: resuming after a reload is best effort
    }
  }

  private read(key: string): string | undefined {
    try {
      return this.storage?.getItem(key) ?? undefined;
    } catch {
      return undefined;
    }
  }

  private remove(key: string): void {
    try {
      this.storage?.removeItem(key);
    } catch {
      // see persist()
    }
  }
}
