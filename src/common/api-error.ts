/**
 * The one error shape every HTTP refusal takes: `{"error": "<code>", "message": "<human text>"}` (ErrorBody).
 * Only the edge (controllers, the exception filter) builds these; domain services throw their own errors
 * (e.g. IngestError) and the edge maps their codes to statuses.
 */
import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import type { Response } from 'express';
import type { ErrorBody, HttpErrorCode } from '../protocol/errors.js';

export class ApiError extends HttpException {
  /**
   * `headers` are response headers (e.g. `Retry-After`); `extra` adds fields to the body after `error` and
   * `message` (e.g. `errors`, `reasons`).
   */
  constructor(
    status: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
    extra?: Record<string, unknown> & { error?: never; message?: never },
  ) {
    const body: ErrorBody = { error: code, message, ...extra };
    super(body, status);
  }
}

/** The code of an HttpException Nest or Express raised itself (a 404 route, a 405, …). */
const DEFAULT_CODES: Partial<Record<number, HttpErrorCode>> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  408: 'request_timeout',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  503: 'unavailable',
};

/**
 * Turns every exception into the documented JSON shape; 5xx bodies never carry internals. `toApiError` is the
 * HTTP edge of the domain errors (e.g. an IngestError thrown through a controller): it returns the ApiError an
 * error answers as, or undefined for anything unexpected.
 */
@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  constructor(
    private readonly onUnexpected: (err: unknown) => void,
    private readonly toApiError: (err: unknown) => ApiError | undefined = (err) =>
      err instanceof ApiError ? err : undefined,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return;
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) {
      res.end();
      return;
    }
    const refusal = this.toApiError(exception);
    if (refusal) {
      for (const [k, v] of Object.entries(refusal.headers)) res.setHeader(k, v);
      res.status(refusal.getStatus()).json(refusal.getResponse());
      return;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = DEFAULT_CODES[status] ?? (status >= 500 ? 'internal_error' : 'invalid_request');
      const message = status >= 500 ? 'internal error' : exception.message;
      res.status(status).json({ error: code, message });
      return;
    }
    this.onUnexpected(exception);
    res.status(HttpStatus.INTERNAL_SERVER_ERROR).json({ error: 'internal_error', message: 'internal error' });
  }
}
