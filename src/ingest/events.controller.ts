import { Controller, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { AuthError, Authenticator } from '../auth/auth.service.js';
import { parseJsonBody } from '../events/envelope.js';
import type { PublishAnswer } from '../protocol/ingest-answers.js';
import { readRawBody } from './body-reader.js';
import { asApiError } from './ingest-refusal.js';
import { IngestService } from './ingest.service.js';
import { sendApiError } from './send-error.js';
import { sendJson } from './send-json.js';

/** `POST /v1/events`: first-party publish with an API key. */
@Controller('v1/events')
export class EventsController {
  constructor(
    private readonly ingest: IngestService,
    private readonly auth: Authenticator,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post()
  async publish(@Req() req: Request, @Res() res: Response): Promise<void> {
    try {
      await this.receive(req, res);
    } catch (err) {
      // A refusal made before the body was read (a missing key, a declared oversized body) is answered without
      // resetting a client that is still sending (send-error.ts).
      const refusal = asApiError(err);
      if (!refusal) throw err;
      sendApiError(req, res, refusal, this.config.ingest.maxBodyBytes);
    }
  }

  private async receive(req: Request, res: Response): Promise<void> {
    let principal;
    try {
      principal = this.auth.authenticateApiKey(req.headers.authorization);
    } catch (err) {
      if (err instanceof AuthError) throw new ApiError(401, 'unauthorized', err.message);
      throw err;
    }
    const body = await readRawBody(req, this.config.ingest.maxBodyBytes, this.config.ingest.bodyTimeoutMs);
    const parsed = parseJsonBody(body, this.config.ingest.maxJsonDepth);
    if (!parsed.ok) throw new ApiError(400, 'invalid_payload', `the body is not valid JSON: ${parsed.reason}`);
    const results = await this.ingest.publish(principal, parsed.value);
    const answer: PublishAnswer = { results };
    sendJson(res, 202, answer);
  }
}
