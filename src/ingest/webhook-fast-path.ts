/**
 * `POST /webhooks/<source>` served from Node's `request` event, ahead of Express and Nest's router.
 *
 * Why: in the ingest profile, Express's router (layer walk, param processing, prototype swaps) and Nest's
 * execution context cost ~10 % of the gateway's CPU per webhook, the largest cost left that a bare receiver
 * does not pay. Same handler as the controller (receiveWebhook), same answers, and the same error bodies and
 * headers as ApiErrorFilter. Only the exact form `POST /webhooks/<[A-Za-z0-9_-]+>` (optionally with a query
 * string) takes this path; anything else (a trailing slash, other letter case, escapes, other methods) goes to
 * Express, whose controller applies the same exact match and answers 404.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AppConfig } from '../config/app-config.js';
import { asApiError } from './ingest-refusal.js';
import type { IngestService } from './ingest.service.js';
import { sendApiError } from './send-error.js';
import { sendJson } from './send-json.js';
import { receiveWebhook, sourceFromTarget } from './webhooks.controller.js';

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
    const source = req.method === 'POST' ? sourceFromTarget(req.url) : undefined;
    if (source !== undefined) {
      receiveWebhook(ingest, config, source, req, res).catch((err: unknown) => {
        try {
          sendError(req, res, err, config.ingest.maxBodyBytes, onUnexpected);
        } catch (sendErr) {
          onUnexpected(sendErr); // never an unhandled rejection from a request
        }
      });
      return;
    }
    for (const listener of fallback) listener.call(server, req, res);
  });
}

/** What ApiErrorFilter answers, byte for byte. */
function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  err: unknown,
  maxBodyBytes: number,
  onUnexpected: (err: unknown) => void,
): void {
  const refusal = asApiError(err);
  if (refusal) {
    sendApiError(req, res, refusal, maxBodyBytes);
    return;
  }
  if (res.headersSent) {
    res.end();
    return;
  }
  onUnexpected(err);
  sendJson(res, 500, { error: 'internal_error', message: 'internal error' });
}
