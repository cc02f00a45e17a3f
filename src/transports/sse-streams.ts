/**
 * Server-Sent Events transport: `GET /v1/stream`. Protocol only; the hub decides what to send. Written on Node's
 * raw response so every frame, its id and the client's backlog are exact.
 *
 * Served from the HTTP server's `request` event (sse-fast-path.ts) rather than through Express and Nest's
 * router: whatever those attach to a request (the router's `next` chain, the prototype swaps, Nest's execution
 * context) lives as long as the response, and a stream's response lives as long as the client stays. The Nest
 * controller (sse.controller.ts) hands the forms the fast path leaves to Express to the same `open()`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { AuthError, Authenticator, type Principal } from '../auth/auth.service.js';
import { FanoutHub } from '../fanout/fanout-hub.js';
import { SubscribeError } from '../fanout/fanout.types.js';
import { Lifecycle } from '../lifecycle.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { SubscribeErrorCode } from '../protocol/index.js';
import { clientAddress, originAllowed } from './client-address.js';
import { type ConnectionCap, ConnectionRegistry } from './connection-registry.js';
import { SseConnection } from './sse-connection.js';
import { sseFrame } from './sse-frame.js';
import { checkSubscribeRequest } from './subscribe-request.js';
import { SharedTicker } from './keepalive.js';

const KEEPALIVE_MS = 15_000;
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

/** The query string as the stream reads it: every value given for a name (strings, or whatever Express parsed). */
export type StreamQuery = (name: string) => unknown[];

@Injectable()
export class SseStreams {
  /** Open streams: each gets the keep-alive comment from one process-wide timer, and the shutdown notice. */
  private readonly open = new SharedTicker<SseConnection>(KEEPALIVE_MS);

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

  /** Opens a stream, or throws the ApiError to answer with (nothing has been written then). */
  async stream(req: IncomingMessage, res: ServerResponse, query: StreamQuery): Promise<void> {
    // The client may leave during any await below. What the request holds is given back once, by
    // `SseConnection.release`, when the response closes (or at once when it already has); each await is followed
    // by a check.
    const conn = new SseConnection(res, this.open, this.metrics.delivered);
    if (req.socket.destroyed) conn.gone = true;

    if (!originAllowed(req.headers.origin, this.config.server.allowedOrigins)) {
      throw new ApiError(403, 'forbidden', 'pages from this origin may not open streams (server.allowedOrigins)');
    }
    const principal = await this.authenticate(req, query);
    if (conn.gone) return;
    const patterns = query('subject');
    if (patterns.length > this.config.limits.patternsPerSubscription) throw refusal('limit_exceeded');
    if (!patterns.every((p): p is string => typeof p === 'string')) throw refusal('invalid_subject');
    const single = (name: string): string | undefined => {
      const values = query(name);
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

  private async authenticate(req: IncomingMessage, query: StreamQuery): Promise<Principal> {
    const header = req.headers.authorization;
    let token: string | undefined;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) throw new ApiError(401, 'unauthorized', 'the Authorization header must be "Bearer <token>"');
      token = m[1];
    } else {
      const given = query('access_token');
      if (given.length > 0) {
        if (given.length > 1 || typeof given[0] !== 'string')
          throw new ApiError(401, 'unauthorized', 'access_token must be one string');
        token = given[0];
      }
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
