import type { ServerResponse } from 'node:http';

/**
 * The success answer of the ingest endpoints, written straight to Node's response: the same status, headers
 * (`Content-Type: application/json; charset=utf-8`, `Content-Length`) and bytes as Express's `res.json()`,
 * without its per-call work (content-type lookup, charset parsing, ETag and freshness checks; ETag is off).
 * Errors still go through the exception filter.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}
