import type { IncomingMessage, ServerResponse } from 'node:http';
import { All, Controller, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { readRawBody } from './body-reader.js';
import { asApiError } from './ingest-refusal.js';
import { IngestService } from './ingest.service.js';
import { sendApiError } from './send-error.js';
import { sendJson } from './send-json.js';

const PREFIX = '/webhooks/';
const SOURCE = /^[A-Za-z0-9_-]+$/;

/**
 * The source named by a raw request target, or undefined unless its path is exactly `/webhooks/<name>` with a
 * name of `[A-Za-z0-9_-]+` (a query string is ignored). Matching is on the bytes as sent: another letter case,
 * a percent-escape or a trailing slash names no source, whatever a router would normalise.
 */
export function sourceFromTarget(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith(PREFIX)) return undefined;
  const query = url.indexOf('?');
  const name = url.slice(PREFIX.length, query < 0 ? undefined : query);
  return SOURCE.test(name) ? name : undefined;
}

/**
 * `POST /webhooks/:source`: the one implementation, used by the controller below and by the fast path in
 * front of Express (webhook-fast-path.ts). Refusals are thrown (ApiError, IngestError); callers map them with
 * asApiError.
 */
export async function receiveWebhook(
  ingest: IngestService,
  config: AppConfig,
  source: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  ingest.source(source); // 404 before reading a byte of an unknown source's body
  const body = await readRawBody(req, config.ingest.maxBodyBytes, config.ingest.bodyTimeoutMs);
  const answer = await ingest.ingestWebhook({
    source,
    headers: req.headersDistinct as Record<string, string[] | undefined>,
    body,
    contentType: req.headers['content-type'],
  });
  sendJson(res, answer.status, answer.body);
}

@Controller('webhooks')
export class WebhooksController {
  constructor(
    private readonly ingest: IngestService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Express matches routes case-insensitively, decodes parameters and ignores a trailing slash; the source is
   * therefore taken from the raw request target, exactly as the fast path does.
   */
  @Post(':source')
  async receive(@Req() req: Request, @Res() res: Response): Promise<void> {
    try {
      const source = sourceFromTarget(req.originalUrl);
      if (source === undefined) throw unknownSource(req);
      await receiveWebhook(this.ingest, this.config, source, req, res);
    } catch (err) {
      const refusal = asApiError(err);
      if (!refusal) throw err;
      sendApiError(req, res, refusal, this.config.ingest.maxBodyBytes);
    }
  }

  /** Anything else under /webhooks (nested paths, other methods) names no source. */
  @All(['', '*rest'])
  unknown(@Req() req: Request, @Res() res: Response): void {
    sendApiError(req, res, unknownSource(req), this.config.ingest.maxBodyBytes);
  }
}

function unknownSource(req: Request): ApiError {
  return new ApiError(404, 'unknown_source', `no source matches ${req.method} ${req.path}`);
}
