/**
 * The console's two server endpoints: its settings (what to subscribe to by default, whether the demo button
 * works) and `POST /console/demo-webhook`, which signs a demo payload server-side and ingests it through the
 * normal path. The page itself and its assets are served by StaticController.
 */
import { randomUUID } from 'node:crypto';
import { Controller, Get, Header, Inject, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { allowedBy } from '../events/pattern.js';
import { IngestService } from '../ingest/ingest.service.js';
import { signDemoWebhook } from './demo-webhook.js';

export interface ConsoleSettings {
  subjectPrefix: string;
  /** What an anonymous console subscribes to without `subject` params: everything, narrowed to the anonymous grant. */
  defaultSubjects: string[];
  /** The source `POST /console/demo-webhook` signs for; null when the demo button is off. */
  demoSource: string | null;
}

@Controller('console')
export class ConsoleController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly ingest: IngestService,
  ) {}

  @Get('config.json')
  @Header('Cache-Control', 'no-store')
  settings(): ConsoleSettings {
    const everything = `${this.config.stream.subjectPrefix}.>`;
    const anonymous = this.config.auth.anonymous.subscribe;
    // The default is `events.>` within the caller's grant (docs/protocol.md). Without a token the caller is
    // anonymous: when its grant is narrower, start with the grant itself rather than a subscription that would
    // be refused.
    const defaultSubjects = anonymous.length === 0 || allowedBy(anonymous, everything) ? [everything] : [...anonymous];
    return {
      subjectPrefix: this.config.stream.subjectPrefix,
      defaultSubjects,
      demoSource: this.config.console.demoSource ?? null,
    };
  }

  @Post('demo-webhook')
  async demoWebhook(@Res() res: Response): Promise<void> {
    const name = this.config.console.demoSource;
    if (!name) {
      throw new ApiError(404, 'not_found', 'the demo webhook is off: set console.demoSource to a configured source');
    }
    const source = this.ingest.source(name);
    const signed = signDemoWebhook(source, Date.now(), randomUUID());
    const answer = await this.ingest.ingestWebhook({
      source: name,
      headers: signed.headers,
      body: signed.body,
      contentType: signed.contentType,
    });
    res.status(answer.status).json(answer.body);
  }
}
