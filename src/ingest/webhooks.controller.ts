import { All, Controller, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { readRawBody } from './body-reader.js';
import { IngestService } from './ingest.service.js';

@Controller('webhooks')
export class WebhooksController {
  constructor(
    private readonly ingest: IngestService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post(':source')
  async receive(@Param('source') source: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    this.ingest.source(source); // 404 before reading a byte of an unknown source's body
    const body = await readRawBody(req, this.config.ingest.maxBodyBytes, this.config.ingest.bodyTimeoutMs);
    const answer = await this.ingest.ingestWebhook({
      source,
      headers: req.headersDistinct as Record<string, string[] | undefined>,
      body,
      contentType: req.headers['content-type'],
    });
    res.status(answer.status).json(answer.body);
  }

  /** Anything else under /webhooks (nested paths, other methods) names no source. */
  @All(['', '*rest'])
  @HttpCode(404)
  unknown(@Req() req: Request): never {
    throw new ApiError(404, 'unknown_source', `no source matches ${req.method} ${req.path}`);
  }
}
