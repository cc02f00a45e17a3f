/**
 * `POST /webhooks/<source>` served from Node's `request` event, ahead of Express and Nest's router.
 *
 * Why: in the ingest profile, Express's router (layer walk, param processing, prototype swaps) and Nest's
 * execution context cost ~10 % of the gateway's CPU per webhook, the largest cost left that a bare receiver
 * does not pay. Same handler as the controller (receiveWebhook), same answers, and the same error bodies and
 * headers as ApiErrorFilter. Only the exact form `POST /webhooks/<[A-Za-z0-9_-]+>` takes this path; anything
 * else (a query string, a trailing slash, other letter case, escapes, other methods) goes to Express as
 * before, so the controller stays the reference behaviour for every edge case.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApiError } from '../common/api-error.js';
import type { AppConfig } from '../config/app-config.js';
import type { IngestService } from './ingest.service.js';
import { sendJson } from './send-json.js';
import { receiveWebhook } from './webhooks.controller.js';

const PREFIX = '/webhooks/';
const SOURCE = /^[A-Za-z0-9_-]+$/;

/**
 * Wraps the server's current `request` listeners (Express) behind the fast path. Call before Socket.IO
 * attaches (engine.io wraps whatever listeners it finds, so its own paths still come first).
 */
export function installWebhookFastPath(
  server: Server,
  ingest: IngestService,
  config: AppConfig,
  onUnexpected: (err: unknown) => void,
): void {
  const fallback = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url;
    if (req.method === 'POST' && url !== undefined && url.startsWith(PREFIX)) {
      const source = url.slice(PREFIX.length);
      if (SOURCE.test(source)) {
        receiveWebhook(ingest, config, source, req, res).catch((err: unknown) => {
          try {
            sendError(res, err, onUnexpected);
          } catch (sendErr) {
            onUnexpected(sendErr); // never an unhandled rejection from a request
          }
        });
        return;
      }
    }
    for (const listener of fallback) listener.call(server, req, res);
  });
}

/** What ApiErrorFilter answers, byte for byte. */
function sendError(res: ServerResponse, err: unknown, onUnexpected: (err: unknown) => void): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (err instanceof ApiError) {
    for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
    sendJson(res, err.getStatus(), err.getResponse());
    return;
  }
  onUnexpected(err);
  sendJson(res, 500, { error: 'internal_error', message: 'internal error' });
}
