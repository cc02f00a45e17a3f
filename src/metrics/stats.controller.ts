/**
 * `GET /v1/stats`: the live numbers of `/metrics` as JSON (src/protocol/stats.ts), for the console's Overview and
 * for scripts. Like the other `/v1` reads it needs `Authorization: Bearer <api key>` (any configured key).
 */
import { Controller, Get, Header, Headers } from '@nestjs/common';
import { AuthError, Authenticator } from '../auth/auth.service.js';
import { ApiError } from '../common/api-error.js';
import type { StatsBody } from '../protocol/stats.js';
import { MetricsService } from './metrics.service.js';
import { readStats } from './stats.js';

@Controller('v1/stats')
export class StatsController {
  constructor(
    private readonly metrics: MetricsService,
    private readonly auth: Authenticator,
  ) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  async stats(@Headers('authorization') authorization: string | undefined): Promise<StatsBody> {
    try {
      this.auth.authenticateApiKey(authorization);
    } catch (err) {
      if (err instanceof AuthError) throw new ApiError(401, 'unauthorized', err.message);
      throw err;
    }
    return readStats(this.metrics);
  }
}
