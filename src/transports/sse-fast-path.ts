/**
 * `GET /v1/stream` served from Node's `request` event, ahead of Express and Nest's router (sse-streams.ts says
 * why: what they attach to a request lives as long as the stream). Only `GET` of the exact path (with any query
 * string) takes this path; the query is parsed by `node:querystring`, Express's own ("simple") query parser,
 * so the stream reads the same values either way. Other spellings Express routes here (a trailing slash, other
 * letter case) and HEAD go to Express, whose controller opens the same stream. Refusals are written as
 * ApiErrorFilter writes them.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { parse } from 'node:querystring';
import { ApiError } from '../common/api-error.js';
import { sendApiError } from '../ingest/send-error.js';
import { sendJson } from '../ingest/send-json.js';
import type { SseStreams } from './sse-streams.js';

const PATH = '/v1/stream';

/** The query string of a request the fast path takes, or undefined when Express should have it. */
export function fastStreamQuery(method: string | undefined, url: string | undefined): string | undefined {
  if (method !== 'GET' || url === undefined || !url.startsWith(PATH)) return undefined;
  if (url.length === PATH.length) return '';
  if (url.charCodeAt(PATH.length) !== 0x3f /* ? */) return undefined;
  return url.slice(PATH.length + 1);
}

/**
 * Wraps the server's current `request` listeners behind the SSE fast path. Call before Socket.IO attaches
 * (engine.io wraps whatever listeners it finds, so its own paths still come first).
 */
export function installSseFastPath(server: Server, streams: SseStreams, onUnexpected: (err: unknown) => void): void {
  const fallback = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const query = fastStreamQuery(req.method, req.url);
    if (query === undefined) {
      for (const listener of fallback) listener.call(server, req, res);
      return;
    }
    const params = parse(query);
    streams
      .stream(req, res, (name) => {
        const v = params[name];
        return v === undefined ? [] : Array.isArray(v) ? v : [v];
      })
      .catch((err: unknown) => {
        try {
          sendError(req, res, err, onUnexpected);
        } catch (sendErr) {
          onUnexpected(sendErr); // never an unhandled rejection from a request
        }
      });
  });
}

/** What ApiErrorFilter answers for a stream request. */
function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, onUnexpected: (err: unknown) => void) {
  if (err instanceof ApiError) return sendApiError(req, res, err, 0);
  if (res.headersSent) return void res.end();
  onUnexpected(err);
  sendJson(res, 500, { error: 'internal_error', message: 'internal error' });
}
