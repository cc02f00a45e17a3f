import { Controller, Get, Headers, HttpCode, Inject, Param, Post, Put, Req } from '@nestjs/common';
import type { Request } from 'express';
import { ApiError } from '../common/api-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { AuthError, Authenticator, type Principal } from '../auth/auth.service.js';
import { allowedBy } from '../events/pattern.js';
import { parseJsonBody } from '../events/envelope.js';
import { validatePublishSubject } from '../events/subject.js';
import { readRawBody } from '../ingest/body-reader.js';
import { StoreUnavailableError } from '../store/event-store.port.js';
import { type Compatibility } from './compatibility.js';
import { isCompatibility, SchemaRegistry } from './schema-registry.js';
import { SchemaError, type SchemaErrorCode } from './schema.errors.js';

const STATUS: Record<SchemaErrorCode, number> = {
  invalid_schema: 400,
  invalid_subject: 400,
  invalid_request: 400,
  not_found: 404,
  read_only: 409,
  incompatible_schema: 409,
  unavailable: 503,
};

/** The schema registry's HTTP API: reads for any API key; changes for a key whose publish grant holds the subject, or an admin key. */
@Controller('v1/schemas')
export class SchemasController {
  constructor(
    private readonly registry: SchemaRegistry,
    private readonly auth: Authenticator,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get()
  async list(@Headers('authorization') authorization: string | undefined) {
    this.principal(authorization);
    return { subjects: await this.call(() => this.registry.list()) };
  }

  @Get(':subject')
  async subject(@Headers('authorization') authorization: string | undefined, @Param('subject') subject: string) {
    this.principal(authorization);
    const s = await this.call(() => this.registry.get(subject));
    return {
      subject: s.subject,
      compatibility: s.compatibility,
      mode: s.mode,
      managed: s.managed,
      versions: s.versions.map((v) => v.version),
    };
  }

  @Get(':subject/versions/:version')
  async version(
    @Headers('authorization') authorization: string | undefined,
    @Param('subject') subject: string,
    @Param('version') version: string,
  ) {
    this.principal(authorization);
    const v = await this.call(() => this.registry.getVersion(subject, version));
    return { subject, version: v.version, schema: v.schema, createdAt: v.createdAt };
  }

  @Post(':subject/versions')
  @HttpCode(201)
  async register(@Req() req: Request, @Param('subject') subject: string) {
    const principal = this.principal(req.headers.authorization);
    this.mayChange(principal, subject);
    const body = await this.body(req);
    if (!('schema' in body))
      throw new ApiError(400, 'invalid_request', 'the body needs a "schema" (a JSON Schema object)');
    const compatibility = body.compatibility;
    if (compatibility !== undefined && !isCompatibility(compatibility)) {
      throw new ApiError(400, 'invalid_request', '"compatibility" must be one of backward, forward, full, none');
    }
    return this.call(() => this.registry.register(subject, body.schema, compatibility as Compatibility | undefined));
  }

  @Put(':subject/config')
  async configure(@Req() req: Request, @Param('subject') subject: string) {
    const principal = this.principal(req.headers.authorization);
    this.mayChange(principal, subject);
    const body = await this.body(req);
    const { compatibility, mode } = body;
    if (compatibility !== undefined && !isCompatibility(compatibility)) {
      throw new ApiError(400, 'invalid_request', '"compatibility" must be one of backward, forward, full, none');
    }
    if (mode !== undefined && mode !== null && mode !== 'enforce' && mode !== 'warn') {
      throw new ApiError(400, 'invalid_request', '"mode" must be "enforce", "warn" or null (the defaults)');
    }
    if (compatibility === undefined && mode === undefined) {
      throw new ApiError(400, 'invalid_request', 'set "compatibility", "mode" or both');
    }
    return this.call(() =>
      this.registry.configure(subject, {
        ...(compatibility !== undefined ? { compatibility: compatibility as Compatibility } : {}),
        ...(mode !== undefined ? { mode: mode as 'enforce' | 'warn' | null } : {}),
      }),
    );
  }

  private principal(authorization: string | undefined): Principal {
    try {
      return this.auth.authenticateApiKey(authorization);
    } catch (err) {
      if (err instanceof AuthError) throw new ApiError(401, 'unauthorized', err.message);
      throw err;
    }
  }

  /** A literal subject first (400), then the grant (403): a wildcard is never "allowed" into the registry. */
  private mayChange(principal: Principal, subject: string): void {
    const prefix = this.config.stream.subjectPrefix;
    if (!validatePublishSubject(subject, prefix)) {
      throw new ApiError(
        400,
        'invalid_subject',
        `"${subject}" is not a subject under "${prefix}." made of [A-Za-z0-9_-] tokens without wildcards`,
      );
    }
    if (!principal.admin && !allowedBy(principal.publish, subject)) {
      throw new ApiError(403, 'forbidden', `the API key "${principal.id}" may not manage schemas of ${subject}`);
    }
  }

  private async body(req: Request): Promise<Record<string, unknown>> {
    const raw = await readRawBody(req, this.config.ingest.maxBodyBytes, this.config.ingest.bodyTimeoutMs);
    const parsed = parseJsonBody(raw, this.config.ingest.maxJsonDepth);
    if (!parsed.ok) throw new ApiError(400, 'invalid_request', `the body is not valid JSON: ${parsed.reason}`);
    const value = parsed.value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ApiError(400, 'invalid_request', 'the body must be a JSON object');
    }
    return value as Record<string, unknown>;
  }

  /** Registry refusals → their statuses; an unreachable store → 503 with Retry-After. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SchemaError) {
        const headers: Record<string, string> = err.code === 'unavailable' ? { 'Retry-After': '2' } : {};
        if (err.code === 'incompatible_schema') {
          throw new ApiError(409, err.code, err.message, {}, { reasons: err.reasons });
        }
        throw new ApiError(STATUS[err.code], err.code, err.message, headers);
      }
      if (err instanceof StoreUnavailableError || (err instanceof Error && err.name === 'StoreUnavailableError')) {
        throw new ApiError(503, 'unavailable', 'the schema store cannot be reached; retry', { 'Retry-After': '2' });
      }
      throw err;
    }
  }
}
