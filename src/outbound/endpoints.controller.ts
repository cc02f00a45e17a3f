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

  /** Every handler's shape: the caller (401 first), the service (503 without one), the call, its answer. */
  private async answer<T>(
    req: Request,
    res: Response,
    status: number,
    call: (svc: OutboundService, caller: Caller) => Promise<T>,
  ): Promise<void> {
    const caller = this.caller(req);
    const svc = this.service();
    let result: T;
    try {
      result = await call(svc, caller);
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
  create(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.answer(req, res, 201, async (svc, caller) => svc.create(caller, await this.body(req)));
  }

  @Get()
  list(@Req() req: Request, @Res() res: Response): Promise<void> {
    return this.answer(req, res, 200, (svc, caller) => svc.list(caller));
  }

  @Get(':id')
  get(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    return this.answer(req, res, 200, (svc, caller) => svc.get(caller, id));
  }

  @Get(':id/secret')
  secret(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    return this.answer(req, res, 200, (svc, caller) => svc.secret(caller, id));
  }

  @Patch(':id')
  patch(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    return this.answer(req, res, 200, async (svc, caller) => svc.patch(caller, id, await this.body(req)));
  }

  @Delete(':id')
  remove(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    return this.answer(req, res, 204, (svc, caller) => svc.remove(caller, id));
  }

  @Post(':id/rotate-secret')
  rotate(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    return this.answer(req, res, 200, async (svc, caller) => svc.rotateSecret(caller, id, await this.body(req, true)));
  }

  @Get(':id/attempts')
  attempts(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
  ): Promise<void> {
    return this.answer(req, res, 200, (svc, caller) => svc.attempts(caller, id, query));
  }

  @Get(':id/dead')
  dead(
    @Req() req: Request,
    @Res() res: Response,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
  ): Promise<void> {
    return this.answer(req, res, 200, (svc, caller) => svc.dead(caller, id, query));
  }

  @Post(':id/redeliver')
  redeliver(@Req() req: Request, @Res() res: Response, @Param('id') id: string): Promise<void> {
    return this.answer(req, res, 202, async (svc, caller) => svc.redeliver(caller, id, await this.body(req)));
  }
}
