/**
 * The console's two server endpoints: its settings (what to subscribe to by default, whether the demo button
 * works) and `POST /console/demo-webhook`, which signs a demo payload server-side and ingests it through the
 * normal path. The page itself and its assets are served by StaticController.
 */
import { randomUUID } from 'node:crypto';
import { Controller, Get, Header, Inject, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { allowedBy } from '../events/pattern.js';
import { IngestService } from '../ingest/ingest.service.js';
import { MessageRateLimiter } from '../transports/message-rate-limiter.js';
import { signDemoWebhook } from './demo-webhook.js';

/** Demo webhooks per process: a burst of 10, then one a second (a person clicking, never a flood of writes). */
const DEMO_BURST = 10;
const DEMO_PER_SECOND = 1;

export interface ConsoleSettings {
  subjectPrefix: string;
  /** What an anonymous console subscribes to without `subject` params: everything, narrowed to the anonymous grant. */
  defaultSubjects: string[];
  /** The source `POST /console/demo-webhook` signs for; null when the demo button is off. */
  demoSource: string | null;
}

@Controller('console')
export class ConsoleController {
  private readonly demoBudget = new MessageRateLimiter(DEMO_PER_SECOND, DEMO_BURST);

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
  async demoWebhook(@Req() req: Request, @Res() res: Response): Promise<void> {
    const name = this.config.console.demoSource;
    if (!name) {
      throw new ApiError(404, 'not_found', 'the demo webhook is off: set console.demoSource to a configured source');
    }
    const source = this.ingest.source(name);
    // Config checks this at start; checked again here because this endpoint signs for anyone who reaches it.
    if (!source.demo)
      throw new ApiError(404, 'not_found', 'the demo webhook signs only for a source marked demo: true');
    if (!sameOrigin(req)) {
      throw new ApiError(
        403,
        'forbidden',
        "the demo webhook is sent by the console page itself: the request must carry this gateway's own Origin",
      );
    }
    if (this.demoBudget.take() !== 'allow') {
      throw new ApiError(429, 'limit_exceeded', 'too many demo webhooks; try again in a second', {
        'Retry-After': '1',
      });
    }
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

/**
 * Whether the request comes from a page of this gateway: browsers send `Origin` on every POST, and a page of
 * another site (a CSRF form, a script) cannot forge it. A request without one (curl, a script) is refused too:
 * `npm run send` signs test webhooks for those.
 */
function sameOrigin(req: Request): boolean {
  const { origin, host } = req.headers;
  if (typeof origin !== 'string' || typeof host !== 'string') return false;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host === host.toLowerCase();
  } catch {
    return false; // `null` and other opaque origins
  }
}
