import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiError } from '../common/api-error.js';

/**
 * A refusal sent before the request body has fully arrived (413, 408, an unknown source, a missing API key) is
 * answered at once, but the connection is not closed while the client is still sending: closing a socket with
 * unread bytes makes the kernel reset the connection, and the reset can reach the client before it has read the
 * answer. The rest of the body is read and thrown away instead, up to these bounds; past them the socket is
 * destroyed (the client has had that long to read the answer).
 */
export const DRAIN_MIN_BYTES = 4 * 1024 * 1024;
export const DRAIN_TIMEOUT_MS = 5_000;

/**
 * Writes an ApiError as ApiErrorFilter would (same status, headers and JSON body). When the request body is still
 * arriving, the answer goes out now with `Connection: close`, and the response ends (closing the connection) once
 * the body has been discarded, or at the bounds: `max(maxBodyBytes, DRAIN_MIN_BYTES)` more bytes or
 * DRAIN_TIMEOUT_MS.
 */
export function sendApiError(req: IncomingMessage, res: ServerResponse, err: ApiError, maxBodyBytes: number): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(err.getResponse());
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  const head = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) };
  if (req.complete || req.destroyed) {
    res.writeHead(err.getStatus(), head);
    res.end(text);
    return;
  }
  res.setHeader('Connection', 'close');
  res.writeHead(err.getStatus(), head);
  res.write(text);
  discardRest(req, Math.max(maxBodyBytes, DRAIN_MIN_BYTES), DRAIN_TIMEOUT_MS, (drained) => {
    res.end();
    if (!drained) req.socket.destroy();
  });
}

/** Reads and drops the rest of a request body; `done(true)` at its end, `done(false)` at a bound or on error. */
function discardRest(
  req: IncomingMessage,
  maxBytes: number,
  timeoutMs: number,
  done: (drained: boolean) => void,
): void {
  let size = 0;
  let settled = false;
  const finish = (drained: boolean) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onFail);
    req.off('close', onFail);
    done(drained);
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) finish(false);
  };
  const onEnd = () => finish(true);
  const onFail = () => finish(false);
  const timer = setTimeout(onFail, timeoutMs);
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onFail);
  req.on('close', onFail);
  req.resume();
}
