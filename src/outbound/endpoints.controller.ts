import { Controller, Delete, Get, Inject, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/api-error.js';
import { AuthError, Authenticator } from '../auth/auth.service.js';
import { parseJsonBody } from '../events/envelope.js';
import { readRawBody } from '../ingest/body-reader.js';
import { sendJson } from '../ingest/send-json.js';
import { OUTBOUND_ERROR_STATUS, OutboundError } from './endpoint.js';
import { OutboundService, type Caller } from './outbound.service.js';

export const OUTBOUND_SERVICE = Symbol('OUTBOUND_SERVICE');

/** `/v1/endpoints`: outbound webhook endpoints, for API keys with `endpoints: true` or `admin: true`. */
@Controller('v1/endpoints')
export class EndpointsController {
  constructor(
    @Inject(OUTBOUND_SERVICE) private readonly outbound: OutboundService | null,
    private readonly auth: Authenticator,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private caller(req: Request): Caller {
    let id: string;
    try {
      id = this.auth.authenticateApiKey(req.headers.authorization).id;
    } catch (err) {
      if (err instanceof AuthError) throw new ApiError(401, 'unauthorized', err.message);
      throw err;
    }
    const key = this.config.auth.apiKeys.find((k) => k.id === id)!;
    return { keyId: key.id, subscribe: key.subscribe, endpoints: key.endpoints === true, admin: key.admin === true };
  }

  private service(): OutboundService {
    if (!this.outbound) throw new ApiError(503, 'unavailable', 'outbound webhooks are not available on this store');
    return this.outbound;
  }

  /** The JSON body; `undefined` when empty and `optional`. */
  private async body(req: Request, optional = false): Promise<unknown> {
    const raw = await readRawBody(req, this.config.ingest.maxBodyBytes, this.config.ingest.bodyTimeoutMs);
    if (raw.length === 0 && optional) return undefined;
    const parsed = parseJsonBody(raw, this.config.ingest.maxJsonDepth);
    if (!parsed.ok) throw new ApiError(400, 'invalid_request', `the body is not valid JSON: ${parsed.reason}`);
    return parsed.value;
  }

  private async run<T>(res: Response, status: number, fn: () => Promise<T>): Promise<void> {
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      if (err instanceof OutboundError) throw new ApiError(OUTBOUND_ERROR_STATUS[err.code], err.code, err.message);
      throw err;
    }
    if (status === 204) {
      res.status(204).end();
      return;
    }
    sendJson(res, status, result);
  }

  @Post()
  async create(@Req() req: Request, @Res() res: Response): Promise<void> {
    const caller = this.caller(req);
    const svc = this.service();
    await this.run(res, 201, async () => svc.create(caller, await this.body(req)));
  }

  @Get()
  async list(@Req() req: Request, @Res() res: Response): Promise<void> {
    const caller = this.caller(req);
    await this.run(res, 200, () => this.service().list(caller));
  }

  @Get(':id')
  async get(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const caller = this.caller(req);
    await this.run(res, 200, () => this.service().get(caller, id));
  }

  @Get(':id/secret')
  async secret(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const caller = this.caller(req);
    await this.run(res, 200, () => this.service().secret(caller, id));
  }

  @Patch(':id')
  async patch(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const caller = this.caller(req);
    const svc = this.service();
    await this.run(res, 200, async () => svc.patch(caller, id, await this.body(req)));
  }

  @Delete(':id')
  async remove(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const caller = this.caller(req);
    await this.run(res, 204, () => this.service().remove(caller, id));
  }

  @Post(':id/rotate-secret')
  async rotate(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const caller = this.caller(req);
    const svc = this.service();
    await this.run(res, 200, async () => svc.rotateSecret(caller, id, await this.body(req, true)));
  }

  @Get(':id/attempts')
  async attempts(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
  ): Promise<void> {
    const caller = this.caller(req);
    await this.run(res, 200, () => this.service().attempts(caller, id, query));
  }

  @Get(':id/dead')
  async dead(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
  ): Promise<void> {
    const caller = this.caller(req);
    await this.run(res, 200, () => this.service().dead(caller, id, query));
  }

  @Post(':id/redeliver')
  async redeliver(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const caller = this.caller(req);
    const svc = this.service();
    await this.run(res, 202, async () => svc.redeliver(caller, id, await this.body(req)));
  }
}
