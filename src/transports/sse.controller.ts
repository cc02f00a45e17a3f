/**
 * `GET /v1/stream` through Express and Nest's router, for the request forms the fast path (sse-fast-path.ts)
 * leaves to Express: other spellings of the path Express matches (a trailing slash, other letter case) and HEAD.
 * Same stream, same answers; a refusal is thrown to ApiErrorFilter.
 */
import { Controller, Get, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { SseStreams } from './sse-streams.js';

@Controller('v1/stream')
export class SseController {
  constructor(private readonly streams: SseStreams) {}

  @Get()
  async stream(@Req() req: Request, @Res() res: Response): Promise<void> {
    const query = req.query as Record<string, unknown>;
    await this.streams.stream(req, res, (name) => {
      const v = query[name];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    });
  }
}
