/**
 * Server-Sent Events transport: `GET /v1/stream`. Protocol only; the hub decides what
 * to send. Written on the raw response so every frame, its id and the client's backlog are exact.
 */
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { AuthError, Authenticator, type Principal } from '../auth/auth.service.js';
import { FanoutHub } from '../fanout/fanout-hub.js';
import { SubscribeError } from '../fanout/fanout.types.js';
import { Lifecycle } from '../lifecycle.js';
import type { CloseReason, SubscribeErrorCode } from '../protocol/index.js';
import { clientAddress, originAllowed } from './client-address.js';
import { type ConnectionCap, ConnectionRegistry } from './connection-registry.js';
import { SseOutbox } from './sse-outbox.js';
import { sseFrame } from './sse-frame.js';
import { checkSubscribeRequest } from './subscribe-request.js';
import { armTokenExpiry } from './token-expiry.js';

const KEEPALIVE_MS = 15_000;
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
  ) {}

  @Get()
  async stream(@Req() req: Request, @Res() res: Response): Promise<void> {
    // The client may leave during any await below. Whatever the request holds is given back once, by `releaseAll`,
    // when the response closes (or at once when it already has), and each await is followed by a check.
    const held: (() => void)[] = [];
    let gone = false;
    const releaseAll = () => {
      for (const give of held.splice(0).reverse()) give();
    };
    const hold = (give: () => void) => {
      held.push(give);
      if (gone) releaseAll();
    };
    res.once('close', () => {
      gone = true;
      releaseAll();
    });
    if (req.socket.destroyed) gone = true;

    if (!originAllowed(req.headers.origin, this.config.server.allowedOrigins)) {
      throw new ApiError(403, 'forbidden', 'pages from this origin may not open streams (server.allowedOrigins)');
    }
    const principal = await this.authenticate(req);
    if (gone) return;
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
    hold(slot);

    const outbox = new SseOutbox(res);

    let sub;
    try {
      sub = await this.hub.subscribe({ patterns, cursor, from }, outbox);
    } catch (err) {
      releaseAll();
      if (err instanceof SubscribeError) throw refusal(err.code);
      throw err;
    }
    const opened = sub;
    hold(() => opened.close());
    if (gone) return;

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
    outbox.write(sseFrame({ retry: 2000 }));
    outbox.write(sseFrame({ event: 'ready', id: sub.startCursor, data: JSON.stringify({ cursor: sub.startCursor }) }));
    sub.begin();

    const keepalive = setInterval(() => outbox.write(sseFrame({ comment: 'keep-alive' })), KEEPALIVE_MS);
    hold(() => clearInterval(keepalive));
    const close = (reason: CloseReason) => {
      outbox.write(sseFrame({ event: 'closing', data: JSON.stringify({ reason }) }));
      outbox.flush();
      res.end();
    };
    outbox.onSlowConsumer(() => close('slow_consumer'));
    hold(armTokenExpiry(principal.expiresAtMs, () => close('token_expired')));
    hold(this.lifecycle.onShutdown(() => close('shutdown')));
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
