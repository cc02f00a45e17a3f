/**
 * SSE as a browser consumes it: the `eventsource` package's EventSource, with hooks to cut the connection and
 * hold reconnection so a test can act while the client is away.
 */
import { EventSource } from 'eventsource';
import { waitFor } from '../lib/wait.mjs';
import type { Delivery, GapNotice } from './contract-shapes.js';

export interface BrowserStreamOptions {
  /** Authorization header (EventSource cannot send one in a browser; the package's custom fetch can). */
  token?: string;
  /** Rewrites every (re)connection's URL, e.g. to move to another replica. Default: unchanged. */
  route?: (url: string) => string;
}

/**
 * An `eventsource` EventSource with a controllable connection: `cut()` ends the current response body the way a
 * dropped connection would (the client then reconnects by itself after `retry`, sending Last-Event-ID), and
 * `hold()` / `release()` keep reconnection attempts waiting so a test can act while the client is away.
 */
export class BrowserStream {
  readonly es: EventSource;
  readonly messages: { data: Delivery; lastEventId: string }[] = [];
  readonly gaps: GapNotice[] = [];
  readonly closings: { reason: string }[] = [];
  readonly readies: { cursor: string; lastEventId: string }[] = [];
  /** Every request made: the URL and the Last-Event-ID header it carried. */
  readonly requests: { url: string; lastEventId: string | undefined; status?: number }[] = [];
  errors = 0;
  private cutCurrent?: () => void;
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;

  constructor(url: string, opts: BrowserStreamOptions = {}) {
    const customFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      await this.gate;
      const target = (opts.route ?? ((u: string) => u))(String(input instanceof Request ? input.url : input));
      const headers = new Headers(init?.headers);
      if (opts.token !== undefined) headers.set('Authorization', `Bearer ${opts.token}`);
      const entry: (typeof this.requests)[number] = {
        url: target,
        lastEventId: headers.get('Last-Event-ID') ?? undefined,
      };
      this.requests.push(entry);
      const res = await fetch(target, { ...init, headers });
      entry.status = res.status;
      if (!res.body) return res;
      // Re-wrap the body so a test can end it like a dropped connection (a clean end makes EventSource reconnect).
      const upstream = res.body.getReader();
      let cancelled = false;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await upstream.read().catch(() => ({ done: true, value: undefined }));
          if (done || cancelled) controller.close();
          else controller.enqueue(value);
        },
        cancel() {
          cancelled = true;
          return upstream.cancel();
        },
      });
      this.cutCurrent = () => {
        cancelled = true;
        void upstream.cancel().catch(() => undefined);
      };
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    };
    this.es = new EventSource(url, { fetch: customFetch });
    this.es.addEventListener('message', (e: MessageEvent) =>
      this.messages.push({ data: JSON.parse(e.data) as Delivery, lastEventId: e.lastEventId }),
    );
    this.es.addEventListener('gap', (e: MessageEvent) => this.gaps.push(JSON.parse(e.data) as GapNotice));
    this.es.addEventListener('closing', (e: MessageEvent) =>
      this.closings.push(JSON.parse(e.data) as { reason: string }),
    );
    this.es.addEventListener('ready', (e: MessageEvent) =>
      this.readies.push({ cursor: (JSON.parse(e.data) as { cursor: string }).cursor, lastEventId: e.lastEventId }),
    );
    this.es.addEventListener('error', () => this.errors++);
  }

  /** Ends the current connection's body, as a network drop would. */
  cut(): void {
    this.cutCurrent?.();
  }

  /** Makes reconnection attempts wait until `release()`. */
  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.openGate();
  }

  seqs(): number[] {
    return this.messages.map((m) => m.data.seq);
  }

  async waitForMessages(n: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(() => this.messages.length >= n, {
      timeoutMs,
      message: `${n} EventSource messages (have ${this.messages.length})`,
    });
  }

  close(): void {
    this.release();
    this.es.close();
  }
}
