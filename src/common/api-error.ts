/**
 * The one error shape every HTTP refusal takes: `{"error": "<code>", "message": "<human text>"}`.
 * Only the edge (controllers, the exception filter) maps domain codes to statuses.
 */
import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
} from '@nestjs/common';
import type { Response } from 'express';

export class ApiError extends HttpException {
  constructor(
    status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super({ error: code, message }, status);
  }
}

const DEFAULT_CODES: Record<number, string> = {
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

/** Turns every exception into the documented JSON shape; 5xx bodies never carry internals. */
@Catch()
export class ApiErrorFilter implements ExceptionFilter {
  constructor(private readonly onUnexpected: (err: unknown) => void) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') return;
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) {
      res.end();
      return;
    }
    if (exception instanceof ApiError) {
      for (const [k, v] of Object.entries(exception.headers)) res.setHeader(k, v);
      res.status(exception.getStatus()).json(exception.getResponse());
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
