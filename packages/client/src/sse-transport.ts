/**
 * Server-Sent Events transport: one EventSource per subscription on `GET /v1/stream`. The EventSource's own
 * reconnection is never used: on any error the SDK closes it and opens a new one with `cursor=` of the last
 * delivery, so resume, dedupe and token renewal work exactly as on the WebSocket transport.
 */
import type { Backoff } from './backoff.js';
import type { SubscriptionState } from './subscription-state.js';
import type { ClosingMessage, ErrorBody } from './protocol/index.js';
import { closeClass, retryRefusal, type ClientTransport, type TransportHost } from './transport.js';
import {
  HookstreamError,
  type ClientStatus,
  type Delivery,
  type ErrorCode,
  type EventSourceConstructor,
  type EventSourceLike,
  type GapNotice,
} from './types.js';

type Phase = 'connecting' | 'open' | 'reconnecting';

const STABLE_MS = 5_000;

function parse<T>(data: unknown): T | undefined {
  if (typeof data !== 'string') return undefined;
  try {
    return JSON.parse(data) as T;
  } catch {
    return undefined;
  }
}

/** `/v1/stream?subject=…&cursor=…&access_token=…` under the gateway URL (which may carry a base path). */
export function streamUrl(
  base: string,
  patterns: readonly string[],
  start: { cursor?: string; from?: string },
  token?: string,
): string {
  const url = new URL(`${base}/v1/stream`);
  for (const p of patterns) url.searchParams.append('subject', p);
  if (start.cursor !== undefined) url.searchParams.set('cursor', start.cursor);
  else if (start.from !== undefined) url.searchParams.set('from', start.from);
  // EventSource cannot send an Authorization header: the gateway accepts the token in the query.
  if (token !== undefined) url.searchParams.set('access_token', token);
  return url.toString();
}

class SseStream {
  phase: Phase = 'connecting';
  private es?: EventSourceLike;
  /** `ready` arrived on the current EventSource. */
  private opened = false;
  private everOpened = false;
  private closingReason: string | undefined;
  private timer?: ReturnType<typeof setTimeout>;
  private stableTimer?: ReturnType<typeof setTimeout>;
  private probe?: AbortController;
  private readonly backoff: Backoff;
  private limitRetries = 0;
  private closed = false;

  constructor(
    readonly state: SubscriptionState,
    private readonly host: TransportHost,
    private readonly EventSourceImpl: EventSourceConstructor,
    private readonly changed: (stream: SseStream, failed?: HookstreamError) => void,
  ) {
    this.backoff = host.newBackoff();
  }

  start(): void {
    void this.open(this.host.token() === undefined);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.stableTimer);
    this.probe?.abort();
    this.es?.close();
    this.es = undefined;
  }

  private async open(renewToken: boolean): Promise<void> {
    if (this.closed) return;
    if (renewToken) {
      const renewed = await this.host.refreshToken();
      if (this.closed) return;
      if (renewed === 'failed') return this.schedule(this.backoff.next(), true);
    }
    const url = streamUrl(this.host.url, this.state.patterns, this.state.startRequest(), this.host.token());
    const es = new this.EventSourceImpl(url);
    this.es = es;
    this.opened = false;
    this.closingReason = undefined;
    const current = () => this.es === es && !this.closed;
    es.addEventListener('ready', (e) => {
      if (!current()) return;
      this.opened = true;
      this.everOpened = true;
      this.limitRetries = 0;
      clearTimeout(this.stableTimer);
      this.stableTimer = setTimeout(() => this.backoff.reset(), STABLE_MS);
      this.state.accepted(parse<{ cursor?: string }>(e.data)?.cursor);
      this.setPhase('open');
    });
    es.addEventListener('message', (e) => {
      const delivery = current() ? parse<Delivery>(e.data) : undefined;
      if (delivery) this.state.deliver(delivery);
    });
    es.addEventListener('gap', (e) => {
      const notice = current() ? parse<GapNotice>(e.data) : undefined;
      if (notice) this.state.gap(notice);
    });
    es.addEventListener('closing', (e) => {
      if (current()) this.closingReason = parse<Partial<ClosingMessage>>(e.data)?.reason;
    });
    es.addEventListener('error', (e) => {
      if (current()) this.onError(url, (e as unknown as { code?: unknown }).code);
    });
  }

  private onError(url: string, status: unknown): void {
    const es = this.es;
    this.es = undefined;
    es?.close();
    // The `eventsource` package arms its own reconnect timer right after dispatching `error`, even when the
    // listener closed it; a second close() after that clears the stray timer (a no-op in browsers).
    if (es) queueMicrotask(() => es.close());
    clearTimeout(this.stableTimer);
    const why = this.closingReason;
    this.closingReason = undefined;
    this.setPhase(this.everOpened ? 'reconnecting' : 'connecting');
    const how = closeClass(why);
    if (how?.renewToken) {
      if (!this.canRenew(why === 'token_expired' ? 'token_expired' : 'unauthorized')) return;
      return this.schedule(this.backoff.prompt(), true);
    }
    if (how?.retry === 'prompt') return this.schedule(this.backoff.prompt(), false);
    if (why !== undefined || this.opened) return this.schedule(this.backoff.next(), false);
    // Failed before the stream started: a refusal (401/403/400) or the network. A browser's EventSource does
    // not say which, so ask the same URL once and read the status and error code.
    void this.diagnose(url, typeof status === 'number' ? status : undefined);
  }

  private async diagnose(url: string, knownStatus: number | undefined): Promise<void> {
    let status = knownStatus;
    let code: string | undefined;
    if (status === undefined || status === 400) {
      const probe = new AbortController();
      this.probe = probe;
      try {
        // `cache` is a browser option (Node's fetch has no HTTP cache): typed so the SDK also compiles for Node.
        const init: RequestInit & { cache?: string } = {
          headers: { accept: 'text/event-stream' },
          signal: probe.signal,
          cache: 'no-store',
        };
        const res = await fetch(url, init);
        status = res.status;
        if (status !== 200) code = (parse<Partial<ErrorBody<string>>>(await res.text()) ?? {}).error;
      } catch {
        status = undefined; // the network: retry
      } finally {
        probe.abort(); // a 200 would open a stream: close it at once
        this.probe = undefined;
      }
    }
    if (this.closed || this.es) return;
    if (status === 401) {
      if (!this.canRenew('unauthorized')) return;
      return this.schedule(this.backoff.next(), true);
    }
    if (status === 400 || status === 403) {
      const error = (code ?? (status === 403 ? 'forbidden' : 'invalid_request')) as ErrorCode;
      if (error === 'invalid_cursor' && this.state.forgetStoredCursor()) return this.schedule(0, false);
      if (retryRefusal(error, this.limitRetries)) {
        if (error === 'limit_exceeded') this.limitRetries++;
        return this.schedule(this.backoff.next(), false);
      }
      const failure = new HookstreamError(
        error,
        `the gateway refused the subscription to ${this.state.patterns.join(', ')}: ${error}`,
        this.state.patterns,
      );
      this.close();
      this.changed(this, failure);
      return;
    }
    this.schedule(this.backoff.next(), false); // 503, network, or a stream that did open this time
  }

  private canRenew(code: ErrorCode): boolean {
    if (this.host.canRenewToken) return true;
    this.host.fatal(new HookstreamError(code, `the gateway refused the token (${code}) and no getToken was given`));
    return false;
  }

  private schedule(delayMs: number, renewToken: boolean): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.open(renewToken), delayMs);
  }

  private setPhase(phase: Phase): void {
    if (this.phase === phase) return;
    this.phase = phase;
    this.changed(this);
  }
}

export class SseTransport implements ClientTransport {
  private readonly streams = new Map<SubscriptionState, SseStream>();
  private status: ClientStatus = 'connecting';
  private closed = false;

  constructor(
    private readonly host: TransportHost,
    private readonly EventSourceImpl: EventSourceConstructor,
  ) {}

  add(state: SubscriptionState): void {
    const stream = new SseStream(state, this.host, this.EventSourceImpl, (s, failed) => this.changed(s, failed));
    this.streams.set(state, stream);
    stream.start();
  }

  remove(state: SubscriptionState): void {
    this.streams.get(state)?.close();
    this.streams.delete(state);
    this.update();
  }

  close(): void {
    this.closed = true;
    for (const stream of this.streams.values()) stream.close();
    this.streams.clear();
  }

  private changed(stream: SseStream, failed?: HookstreamError): void {
    if (failed && this.streams.get(stream.state) === stream) {
      this.streams.delete(stream.state);
      stream.state.fail(failed);
      this.host.reportError(failed);
    }
    this.update();
  }

  /** One status for many streams: reconnecting if any is, live once all are open (a new one does not demote live). */
  private update(): void {
    if (this.closed || this.streams.size === 0) return;
    const phases = [...this.streams.values()].map((s) => s.phase);
    let next: ClientStatus;
    if (phases.includes('reconnecting')) next = 'reconnecting';
    else if (phases.every((p) => p === 'open') || this.status === 'live') next = 'live';
    else next = 'connecting';
    this.status = next;
    this.host.setStatus(next);
  }
}
