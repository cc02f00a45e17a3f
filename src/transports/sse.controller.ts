/**
 * Server-Sent Events transport: `GET /v1/stream`. Protocol only; the hub decides what
 * to send. Written on the raw response so every frame, its id and the client's backlog are exact.
 */
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { AuthError, Authenticator, type Principal } from '../auth/auth.service.js';
import { FanoutHub, type Subscription } from '../fanout/fanout-hub.js';
import { SubscribeError } from '../fanout/fanout.types.js';
import { Lifecycle } from '../lifecycle.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { CloseReason, SubscribeErrorCode } from '../protocol/index.js';
import { clientAddress, originAllowed } from './client-address.js';
import { type ConnectionCap, ConnectionRegistry, type Release } from './connection-registry.js';
import { SseOutbox } from './sse-outbox.js';
import { sseFrame } from './sse-frame.js';
import { checkSubscribeRequest } from './subscribe-request.js';
import { armTokenExpiry } from './token-expiry.js';
import { SharedTicker } from './keepalive.js';

const KEEPALIVE_MS = 15_000;
/** Frames every stream sends alike, built once. */
const KEEPALIVE_FRAME = sseFrame({ comment: 'keep-alive' });
const RETRY_FRAME = sseFrame({ retry: 2000 });
/** Every subscribe refusal with its HTTP status and message: the SSE edge of SubscribeErrorCode. */
const REFUSALS = {
  invalid_request: { status: 400, message: 'the request is not a valid stream request' },
  invalid_subject: {
    status: 400,
    message: 'every subject= must be a valid pattern (tokens of [A-Za-z0-9_-], * or a final >)',
  },
  invalid_cursor: {
    status: 400,
    message: 'the cursor does not decode, or from= is not earliest, latest or an RFC 3339 time',
  },
  limit_exceeded: { status: 400, message: 'too many subject= patterns' },
  forbidden: { status: 403, message: 'these credentials may not subscribe to every requested pattern' },
  unavailable: { status: 503, message: 'the event store cannot be read right now; retry' },
} as const satisfies Record<SubscribeErrorCode, { status: number; message: string }>;

@Controller('v1/stream')
export class SseController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: Authenticator,
    private readonly hub: FanoutHub,
    private readonly connections: ConnectionRegistry,
    private readonly lifecycle: Lifecycle,
    private readonly metrics: MetricsService,
  ) {
    // One closer for every open stream, not one registration per connection.
    lifecycle.onShutdown(() => {
      for (const conn of this.open.list()) conn.close('shutdown');
    });
  }

  /** Open streams: each gets the keep-alive comment from one process-wide timer, and the shutdown notice. */
  private readonly open = new SharedTicker<SseConnection>(KEEPALIVE_MS);

  @Get()
  async stream(@Req() req: Request, @Res() res: Response): Promise<void> {
    // The client may leave during any await below. What the request holds is given back once, by
    // `SseConnection.release`, when the response closes (or at once when it already has); each await is followed
    // by a check.
    const conn = new SseConnection(res, this.open, this.metrics.delivered);
    if (req.socket.destroyed) conn.gone = true;

    if (!originAllowed(req.headers.origin, this.config.server.allowedOrigins)) {
      throw new ApiError(403, 'forbidden', 'pages from this origin may not open streams (server.allowedOrigins)');
    }
    const principal = await this.authenticate(req);
    if (conn.gone) return;
    const query = req.query;
    const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
    const patterns = list(query.subject);
    if (patterns.length > this.config.limits.patternsPerSubscription) throw refusal('limit_exceeded');
    if (!patterns.every((p): p is string => typeof p === 'string')) throw refusal('invalid_subject');
    const single = (name: string): string | undefined => {
      const values = list(query[name]);
      if (values.length > 1 || (values.length === 1 && typeof values[0] !== 'string')) throw refusal('invalid_request');
      return values[0] as string | undefined;
    };
    const lastEventId = req.headers['last-event-id'];
    const cursor = lastEventId !== undefined ? String(lastEventId) : single('cursor');
    const from = single('from');
    const refused = checkSubscribeRequest(principal, { patterns, cursor, from }, this.config.limits);
    if (refused) throw refusal(refused);
    if (this.lifecycle.draining) throw refusal('unavailable');
    const ip = clientAddress(req.socket.remoteAddress, req.headers, this.config.server.trustedProxyHeader);
    const slot = this.connections.acquire('sse', { anonymous: principal.kind === 'anonymous', ip });
    if (typeof slot === 'string') throw capRefusal(slot);
    if (!conn.holdSlot(slot)) return;

    let sub;
    try {
      sub = await this.hub.subscribe({ patterns, cursor, from }, conn.outbox);
    } catch (err) {
      conn.release();
      if (err instanceof SubscribeError) throw refusal(err.code);
      throw err;
    }
    if (!conn.holdSubscription(sub)) return;

    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      // Pages of another origin use EventSource without credentials: the token travels as access_token, never
      // as a cookie. With an allow-list, only listed origins get here (checked above).
      ...corsHeaders(req.headers.origin, this.config.server.allowedOrigins),
    });
    res.socket?.setNoDelay(true);
    conn.outbox.write(RETRY_FRAME);
    conn.outbox.write(
      sseFrame({ event: 'ready', id: sub.startCursor, data: JSON.stringify({ cursor: sub.startCursor }) }),
    );
    sub.begin();
    conn.start(principal.expiresAtMs);
  }

  private async authenticate(req: Request): Promise<Principal> {
    const header = req.headers.authorization;
    let token: string | undefined;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) throw new ApiError(401, 'unauthorized', 'the Authorization header must be "Bearer <token>"');
      token = m[1];
    } else if (req.query.access_token !== undefined) {
      if (typeof req.query.access_token !== 'string')
        throw new ApiError(401, 'unauthorized', 'access_token must be one string');
      token = req.query.access_token;
    }
    try {
      const principal = await this.auth.authenticate(token);
      if (principal.kind === 'anonymous' && principal.subscribe.length === 0) {
        throw new ApiError(
          401,
          'unauthorized',
          'credentials are required: Authorization: Bearer <token> or access_token=',
        );
      }
      return principal;
    } catch (err) {
      if (err instanceof AuthError) throw new ApiError(401, 'unauthorized', err.message);
      throw err;
    }
  }
}

const CAP_MESSAGES: Record<ConnectionCap, string> = {
  connectionsPerProcess: 'this gateway holds as many connections as it may (limits.connectionsPerProcess); retry later',
  anonymousConnections:
    'this gateway holds as many connections without credentials as it may (limits.anonymousConnections); retry later or send a token',
  connectionsPerIp: 'too many connections from this address (limits.connectionsPerIp)',
};

/** A full connection cap: 400 `limit_exceeded`, like every other limit before the stream starts. */
function capRefusal(cap: ConnectionCap): ApiError {
  return new ApiError(400, 'limit_exceeded', CAP_MESSAGES[cap]);
}

/** `*` without an allow-list; with one, the page's own (allowed) origin, and caches told the answer varies. */
function corsHeaders(origin: string | undefined, allowed: string[] | undefined): Record<string, string> {
  if (!allowed) return { 'Access-Control-Allow-Origin': '*' };
  return origin === undefined ? { Vary: 'Origin' } : { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' };
}

function refusal(code: SubscribeErrorCode): ApiError {
  const { status, message } = REFUSALS[code];
  return new ApiError(status, code, message, code === 'unavailable' ? { 'Retry-After': '2' } : {});
}

/**
 * What one stream holds (its connection slot, its subscription, its token timer, its place in the shared
 * keep-alive and shutdown list), given back once by `release()`. A class rather than a list of closures:
 * an idle connection's size is what limits how many one process holds.
 */
class SseConnection {
  /** The response has closed: anything acquired from now on is given back at once. */
  gone = false;
  readonly outbox: SseOutbox;
  private slot: Release | undefined;
  private sub: Subscription | undefined;
  private cancelExpiry: (() => void) | undefined;

  constructor(
    private readonly res: Response,
    private readonly open: SharedTicker<SseConnection>,
    delivered: { sse: number },
  ) {
    this.outbox = new SseOutbox(res, delivered);
    // Registered here, not in the handler: a listener made there would keep the handler's whole scope alive.
    res.once('close', () => this.release());
  }

  /** Holds the slot; false (and the slot given back) when the client has already left. */
  holdSlot(slot: Release): boolean {
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
    this.outbox.onSlowConsumer(() => this.close('slow_consumer'));
    if (expiresAtMs !== undefined) this.cancelExpiry = armTokenExpiry(expiresAtMs, () => this.close('token_expired'));
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
    slot?.();
  }
}
