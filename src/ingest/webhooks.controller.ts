import type { IncomingMessage, ServerResponse } from 'node:http';
import { All, Controller, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { readRawBody } from './body-reader.js';
import { IngestService } from './ingest.service.js';
import { sendJson } from './send-json.js';

/**
 * `POST /webhooks/:source`: the one implementation, used by the controller below and by the fast path in
 * front of Express (webhook-fast-path.ts). Refusals are thrown as ApiError.
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

  @Post(':source')
  receive(@Param('source') source: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return receiveWebhook(this.ingest, this.config, source, req, res);
  }

  /** Anything else under /webhooks (nested paths, other methods) names no source. */
  @All(['', '*rest'])
  @HttpCode(404)
  unknown(@Req() req: Request): never {
    throw new ApiError(404, 'unknown_source', `no source matches ${req.method} ${req.path}`);
  }
}
