/**
 * Reads a request body as raw bytes with a size bound and a deadline, so verifiers see exactly what
 * the provider signed. Nest's global body parser is off: every byte is read here, nowhere else.
 */
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../common/api-error.js';

export async function readRawBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw tooLarge(limit);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | null, body?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        // Stop reading the rest; the connection is closed after the error response.
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('aborted', onAborted);
        req.pause();
        reject(err);
      } else resolve(body as Buffer); // 'end' was the request's last event: its listeners go with it
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(null, Buffer.concat(chunks, size));
    const onError = (err: Error) => finish(new ApiError(400, 'invalid_payload', `could not read the body: ${err.message}`));
    const onAborted = () => finish(new ApiError(400, 'invalid_payload', 'the client aborted the request'));
    const timer = setTimeout(
      () => finish(new ApiError(408, 'request_timeout', `the body did not arrive within ${timeoutMs} ms`, { Connection: 'close' })),
      timeoutMs,
    );
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, 'payload_too_large', `the body is larger than ${limit} bytes`, { Connection: 'close' });
}
