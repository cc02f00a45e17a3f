/**
 * Subscriber clients for the fan-out e2e suites: real `socket.io-client` sockets, a raw SSE reader (node:http
 * plus a frame parser, so exact frames, comments and back-pressure are visible), the `eventsource` package as a
 * browser would use it, JWTs made with `jose`, and a paced publisher over `POST /v1/events`.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EventSource } from 'eventsource';
import { SignJWT } from 'jose';
import { io, type Socket } from 'socket.io-client';
import { waitFor } from '../harness/wait.js';

// ---------------------------------------------------------------------------------------------------------
// Credentials

export const JWT_SECRET = 'hookstream-e2e-jwt-secret-0123456789-abcdefgh';
/** API key that may publish and subscribe to everything under `events.`. */
export const PUBLISH_KEY = 'pk_e2e_publisher_0123456789abcdef';
/** API key that may only subscribe, to `events.acme.>`. */
export const READER_KEY = 'rk_e2e_reader_0123456789abcdef';

/** The `auth` block of the config file the fan-out suites use (exp enforced without leeway). */
export function subscriberAuth(): Record<string, unknown> {
  return {
    jwt: { secret: JWT_SECRET, clockTolerance: '0s' },
    apiKeys: [
      { id: 'publisher', key: PUBLISH_KEY, publish: ['events.>'], subscribe: ['events.>'] },
      { id: 'reader', key: READER_KEY, subscribe: ['events.acme.>'] },
    ],
    anonymous: { subscribe: [] },
  };
}

export interface TokenOptions {
  sub?: string;
  /** `exp`: epoch seconds, or a jose span such as '10m'. Default '10m'. */
  exp?: number | string;
  secret?: string;
}

/** An HS256 JWT with arbitrary claims (use `subscriberToken` for the normal case). */
export async function signJwt(claims: Record<string, unknown>, opts: TokenOptions = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(opts.sub ?? 'u1')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '10m')
    .sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));
}

/** A JWT granting `subscribe: patterns`. */
export function subscriberToken(patterns: string[], opts: TokenOptions = {}): Promise<string> {
  return signJwt({ subscribe: patterns }, opts);
}

// ---------------------------------------------------------------------------------------------------------
// Shapes of the contract (docs/protocol.md)

export interface Delivery {
  cursor: string;
  seq: number;
  subject: string;
  event: Record<string, unknown>;
}

export interface SocketDelivery extends Delivery {
  subscription: string;
}

export interface GapNotice {
  from: string;
  resumeCursor: string;
}

export type SubscribeAck = { ok: true; id: string; cursor: string } | { ok: false; error: string };

export interface SubscribeRequest {
  subjects: string[];
  cursor?: string;
  from?: string;
}

/** NATS wildcard matching, written independently of the app's own matcher (it computes expectations). */
export function natsMatch(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Throws with a readable message unless `seqs` is strictly increasing. */
export function expectStrictlyIncreasing(seqs: number[], what = 'sequence'): void {
  for (let i = 1; i < seqs.length; i++) {
    if (!(seqs[i] > seqs[i - 1])) {
      throw new Error(`${what} is not strictly increasing at index ${i}: ${seqs[i - 1]} then ${seqs[i]}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Socket.IO

export interface ClosingMessage {
  reason: string;
  cursor?: string;
}

/** What one socket received, in arrival order, per kind. Attach before subscribing. */
export class SocketCollector {
  /** Every `event` and `gap` in arrival order (to check that a gap notice comes first). */
  readonly log: (
    { kind: 'event'; msg: SocketDelivery } | { kind: 'gap'; msg: GapNotice & { subscription: string } }
  )[] = [];
  readonly closings: ClosingMessage[] = [];
  /** `closing` and `disconnect` in arrival order (the hint must come first). */
  readonly timeline: string[] = [];
  disconnectReason: string | undefined;

  constructor(readonly socket: Socket) {
    socket.on('event', (msg: SocketDelivery) => this.log.push({ kind: 'event', msg }));
    socket.on('gap', (msg: GapNotice & { subscription: string }) => this.log.push({ kind: 'gap', msg }));
    socket.on('closing', (msg: ClosingMessage) => {
      this.closings.push(msg);
      this.timeline.push('closing');
    });
    socket.on('disconnect', (reason: string) => {
      this.disconnectReason = reason;
      this.timeline.push('disconnect');
    });
  }

  /** Deliveries of one subscription (every subscription when omitted). */
  events(subscription?: string): SocketDelivery[] {
    const out: SocketDelivery[] = [];
    for (const e of this.log) {
      if (e.kind === 'event' && (subscription === undefined || e.msg.subscription === subscription)) out.push(e.msg);
    }
    return out;
  }

  gaps(subscription?: string): (GapNotice & { subscription: string })[] {
    const out: (GapNotice & { subscription: string })[] = [];
    for (const e of this.log) {
      if (e.kind === 'gap' && (subscription === undefined || e.msg.subscription === subscription)) out.push(e.msg);
    }
    return out;
  }

  seqs(subscription?: string): number[] {
    return this.events(subscription).map((d) => d.seq);
  }

  async waitForEvents(subscription: string, n: number, timeoutMs = 15_000): Promise<SocketDelivery[]> {
    await waitFor(() => this.events(subscription).length >= n, {
      timeoutMs,
      message: `${n} deliveries on ${subscription} (have ${this.events(subscription).length})`,
    });
    return this.events(subscription);
  }

  async waitForDisconnect(timeoutMs = 15_000): Promise<string> {
    await waitFor(() => this.disconnectReason !== undefined, { timeoutMs, message: 'socket disconnect' });
    return this.disconnectReason as string;
  }
}

export interface ConnectOptions {
  /** Handshake `auth` object; default `{token}` (or `{}` when token is undefined). */
  auth?: Record<string, unknown>;
  timeoutMs?: number;
}

/** A fresh WebSocket-only connection without automatic reconnection; rejects with the `connect_error`. */
export function connectSocket(url: string, token?: string, opts: ConnectOptions = {}): Promise<Socket> {
  const socket = io(url, {
    transports: ['websocket'],
    auth: opts.auth ?? (token === undefined ? {} : { token }),
    reconnection: false,
    forceNew: true,
    timeout: opts.timeoutMs ?? 10_000,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('connect_error');
      resolve(socket);
    });
    socket.once('connect_error', (err: Error) => {
      socket.close();
      reject(err);
    });
  });
}

/** Sends `subscribe` (any payload, to test refusals) and resolves with the ack. */
export async function subscribeSocket(socket: Socket, req: unknown, timeoutMs = 10_000): Promise<SubscribeAck> {
  return (await socket.timeout(timeoutMs).emitWithAck('subscribe', req)) as SubscribeAck;
}

/** Subscribes and throws unless the ack is ok; returns the subscription id and start cursor. */
export async function mustSubscribe(socket: Socket, req: SubscribeRequest): Promise<{ id: string; cursor: string }> {
  const ack = await subscribeSocket(socket, req);
  if (!ack.ok) throw new Error(`subscribe ${JSON.stringify(req)} refused: ${ack.error}`);
  return { id: ack.id, cursor: ack.cursor };
}

/**
 * A client that keeps one subscription alive across disconnects, as the browser SDK would: on any disconnect
 * it reconnects (to the next URL of `urls()`, if several) and resubscribes from the cursor of the last delivery
 * (or the last ack / gap resume point). Records every delivery and every closing hint.
 */
export class ResumingSocketSubscriber {
  readonly deliveries: SocketDelivery[] = [];
  readonly gaps: GapNotice[] = [];
  readonly closings: ClosingMessage[] = [];
  /** One entry per subscription made: the URL and the cursor it resumed from. */
  readonly sessions: { url: string; cursor?: string }[] = [];
  cursor: string | undefined;
  lastError: unknown;
  private from: string | undefined;
  private socket?: Socket;
  private stopped = false;
  private attempt = 0;
  private reconnecting: Promise<void> | null = null;

  constructor(
    private readonly urls: () => string[],
    private readonly token: string,
    private readonly subjects: string[],
    start: { cursor?: string; from?: string } = {},
  ) {
    this.cursor = start.cursor;
    this.from = start.from;
  }

  get connected(): boolean {
    return !!this.socket?.connected;
  }

  async start(): Promise<void> {
    await this.connectOnce();
  }

  private async connectOnce(): Promise<void> {
    const urls = this.urls();
    const url = urls[this.attempt % urls.length];
    this.attempt++;
    const socket = await connectSocket(url, this.token);
    this.socket = socket;
    socket.on('event', (d: SocketDelivery) => {
      this.deliveries.push(d);
      this.cursor = d.cursor;
    });
    socket.on('gap', (g: GapNotice) => {
      this.gaps.push(g);
      this.cursor = g.resumeCursor;
    });
    socket.on('closing', (c: ClosingMessage) => this.closings.push(c));
    const req: SubscribeRequest = { subjects: this.subjects };
    if (this.cursor !== undefined) req.cursor = this.cursor;
    else if (this.from !== undefined) req.from = this.from;
    try {
      const ack = await subscribeSocket(socket, req);
      if (!ack.ok) throw new Error(`subscribe refused: ${ack.error}`);
      // Before any delivery the ack's cursor is the exact resume point.
      if (this.cursor === undefined) this.cursor = ack.cursor;
      this.from = undefined;
    } catch (err) {
      socket.close();
      throw err;
    }
    this.sessions.push({ url, cursor: req.cursor });
    socket.on('disconnect', () => this.onDisconnect());
    if (!socket.connected) this.onDisconnect();
  }

  private onDisconnect(): void {
    if (this.stopped || this.reconnecting) return;
    this.reconnecting = this.reconnectLoop().finally(() => (this.reconnecting = null));
  }

  private async reconnectLoop(): Promise<void> {
    for (let tries = 0; !this.stopped; tries++) {
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        this.lastError = err;
        // Back off between attempts like a real client would (pacing, not a wait for a test condition).
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** tries, 500)));
      }
    }
  }

  seqs(): number[] {
    return this.deliveries.map((d) => d.seq);
  }

  /** Drops the current connection as a network failure would; the client reconnects by itself. */
  drop(): void {
    this.socket?.disconnect();
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.reconnecting?.catch(() => undefined);
    this.socket?.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// SSE: raw reader over node:http with an incremental frame parser

/** One SSE block (fields up to a blank line), plus the comments seen since the previous block. */
export interface SseFrame {
  /** `event:` field; undefined for the default `message`. */
  event?: string;
  id?: string;
  /** `data:` lines joined with `\n`; undefined when the block had no data field. */
  data?: string;
  retry?: string;
  /** Every field in order, exactly as received (name, value). */
  fields: [string, string][];
}

/** Incremental parser for the text/event-stream format (WHATWG HTML §9.2.6). */
export class SseParser {
  private buffer = '';
  private fields: [string, string][] = [];

  constructor(
    private readonly onFrame: (frame: SseFrame) => void,
    private readonly onComment: (text: string) => void = () => undefined,
  ) {}

  feed(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) return;
      // A lone \r at the very end may be the first half of \r\n: wait for more input.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.fields.length === 0) return;
      const fields = this.fields;
      this.fields = [];
      const frame: SseFrame = { fields };
      const data: string[] = [];
      for (const [name, value] of fields) {
        if (name === 'event') frame.event = value;
        else if (name === 'id') frame.id = value;
        else if (name === 'retry') frame.retry = value;
        else if (name === 'data') data.push(value);
      }
      if (data.length) frame.data = data.join('\n');
      this.onFrame(frame);
      return;
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    this.fields.push([name, value]);
  }
}

export interface SseOpenOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  lastEventId?: string;
  headers?: Record<string, string>;
  /** Called for every frame as it is parsed. */
  onFrame?: (frame: SseFrame) => void;
  /** Keep frames in `frames` (default true; false for very long streams, with `onFrame`). */
  keepFrames?: boolean;
}

/** Builds `/v1/stream?subject=…&subject=…&cursor=…` (undefined values are left out). */
export function streamUrl(
  base: string,
  params: { subject?: string | string[]; [k: string]: string | string[] | undefined },
): string {
  const u = new URL('/v1/stream', base);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) u.searchParams.append(k, one);
  }
  return u.toString();
}

/**
 * A raw SSE stream: status, headers and JSON body of a refusal, or every frame and comment of the stream.
 * `pause()` stops reading the socket (TCP back-pressure reaches the gateway); `resume()` reads on.
 */
export class SseReader {
  readonly frames: SseFrame[] = [];
  readonly comments: string[] = [];
  ended = false;
  error: Error | undefined;
  /** JSON (or text) body of a non-200 answer. */
  body: unknown;
  private readonly parser: SseParser;
  private readonly decoder = new TextDecoder();

  private constructor(
    private readonly req: ClientRequest,
    readonly res: IncomingMessage,
    opts: SseOpenOptions,
  ) {
    const keep = opts.keepFrames ?? true;
    this.parser = new SseParser(
      (f) => {
        if (f.id !== undefined) this.lastSeenId = f.id;
        if (keep) this.frames.push(f);
        opts.onFrame?.(f);
      },
      (c) => this.comments.push(c),
    );
  }

  /** The last `id:` received (what a browser would send back as Last-Event-ID). */
  lastSeenId: string | undefined;

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  header(name: string): string | undefined {
    const v = this.res.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  static open(url: string, opts: SseOpenOptions = {}): Promise<SseReader> {
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...opts.headers };
    if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
    if (opts.lastEventId !== undefined) headers['Last-Event-ID'] = opts.lastEventId;
    return new Promise((resolve, reject) => {
      // A connection of its own (agent: false), so pausing it back-pressures only this stream.
      const req = httpRequest(url, { method: 'GET', headers, agent: false });
      req.once('error', reject);
      req.once('response', (res) => {
        const reader = new SseReader(req, res, opts);
        req.off('error', reject);
        req.on('error', (err) => (reader.error = err));
        res.on('error', (err) => (reader.error = err));
        res.once('close', () => (reader.ended = true));
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.once('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              reader.body = JSON.parse(text);
            } catch {
              reader.body = text;
            }
            resolve(reader);
          });
          return;
        }
        res.on('data', (c: Buffer) => reader.parser.feed(reader.decoder.decode(c, { stream: true })));
        resolve(reader);
      });
      req.end();
    });
  }

  /** Frames of the default type (deliveries), parsed. */
  deliveries(): Delivery[] {
    const out: Delivery[] = [];
    for (const f of this.frames)
      if (f.event === undefined && f.data !== undefined) out.push(JSON.parse(f.data) as Delivery);
    return out;
  }

  /** Frames of one `event:` type. */
  named(event: string): SseFrame[] {
    return this.frames.filter((f) => f.event === event);
  }

  pause(): void {
    this.res.pause();
  }

  resume(): void {
    this.res.resume();
  }

  async waitForFrames(pred: (frames: SseFrame[]) => boolean, message: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(() => pred(this.frames), { timeoutMs, message });
  }

  async waitForDeliveries(n: number, timeoutMs = 15_000): Promise<Delivery[]> {
    await waitFor(() => this.deliveries().length >= n, {
      timeoutMs,
      message: `${n} SSE deliveries (have ${this.deliveries().length})`,
    });
    return this.deliveries();
  }

  async waitForEnd(timeoutMs = 15_000): Promise<void> {
    await waitFor(() => this.ended, { timeoutMs, message: 'SSE stream end' });
  }

  close(): void {
    this.req.destroy();
    this.res.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------
// SSE: the `eventsource` package, as a browser uses it

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

// ---------------------------------------------------------------------------------------------------------
// Publishing

// The wire shapes of POST /v1/events are the service's own.
export type { PublishItem, PublishResult } from '../../src/ingest/ingest.service.js';
import type { PublishItem, PublishResult } from '../../src/ingest/ingest.service.js';

/** POST /v1/events with an API key; throws unless 202. */
export async function publishBatch(baseUrl: string, items: PublishItem[], key = PUBLISH_KEY): Promise<PublishResult[]> {
  const res = await fetch(`${baseUrl}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(items),
  });
  const text = await res.text();
  if (res.status !== 202) throw new Error(`POST /v1/events answered ${res.status}: ${text.slice(0, 300)}`);
  return (JSON.parse(text) as { results: PublishResult[] }).results;
}

export interface LoadOptions {
  /** Gateways to publish through, used in turn. */
  urls: string[];
  ratePerSecond: number;
  /** The i-th event (0-based, across the whole run). */
  item: (i: number) => PublishItem;
  /** Largest batch per request. Default 100. */
  maxBatch?: number;
}

/**
 * Publishes at a steady rate until stopped (a paced generator, not a test wait). Failed batches (e.g. 503 while
 * NATS is down) are counted and dropped; results hold what was accepted.
 */
export class LoadGenerator {
  readonly results: PublishResult[] = [];
  failures = 0;
  private stopped = false;
  private sent = 0;
  private readonly done: Promise<void>;

  constructor(private readonly opts: LoadOptions) {
    this.done = this.run();
  }

  get accepted(): number {
    return this.results.length;
  }

  private async run(): Promise<void> {
    const started = Date.now();
    const maxBatch = this.opts.maxBatch ?? 100;
    let turn = 0;
    while (!this.stopped) {
      const due = Math.floor(((Date.now() - started) / 1000) * this.opts.ratePerSecond) - this.sent;
      if (due <= 0) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const n = Math.min(due, maxBatch);
      const items = Array.from({ length: n }, (_, k) => this.opts.item(this.sent + k));
      this.sent += n;
      const url = this.opts.urls[turn++ % this.opts.urls.length];
      try {
        this.results.push(...(await publishBatch(url, items)));
      } catch {
        this.failures++;
      }
    }
  }

  /** Stops and resolves once the request in flight has finished. */
  async stop(): Promise<PublishResult[]> {
    this.stopped = true;
    await this.done;
    return this.results;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Heap measurement

let gcFn: (() => void) | null | undefined;

/** A full GC, if one can be forced (V8's --expose-gc turned on at run time); null when it cannot. */
export function forceGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  try {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** heapUsed after a forced GC (or as is, when GC cannot be forced). */
export function heapUsedAfterGc(): number {
  const gc = forceGc();
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}
