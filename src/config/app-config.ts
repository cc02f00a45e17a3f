/**
 * loadConfig: the typed configuration tree (app-config.types.ts), built once at start from the environment and
 * the config file. Nothing outside `src/config` reads `process.env` or the file. Each section is parsed and
 * cross-checked by its own module; this one validates the whole against the DTOs, runs the sections and throws
 * one ConfigError listing every problem.
 */
import { resolve } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import type { AppConfig } from './app-config.types.js';
import { loadAuth } from './auth-config.js';
import { EnvDto, FileConfigDto } from './config.dto.js';
import { ConfigError, validationProblems } from './config-error.js';
import { readConfigFile } from './config-file.js';
import { loadDelivery, loadEndpoints } from './delivery-config.js';
import { loadIngestLimits, loadLimits } from './limits-config.js';
import { natsConnectionFromEnv } from './nats-connection.js';
import { loadDeclaredSchemas, publicUrlOf } from './schemas-config.js';
import { secretProblems, secretsOf } from './secret-policy.js';
import { loadConsole, loadSources } from './sources-config.js';
import { loadIdempotency, loadStream } from './stream-config.js';

export type {
  ApiKeyConfig,
  AppConfig,
  DeliveryConfig,
  EndpointConfig,
  JwtConfig,
  SourceConfig,
} from './app-config.types.js';
export type { VerifierName } from './config.dto.js';
export type { NatsAuth, NatsConnectionConfig } from './nats-connection.js';
export type { DeclaredSchema, SchemaCompatibility, SchemaMode } from './schemas-config.js';
export { ConfigError } from './config-error.js';
export { interpolate } from './config-file.js';

/** Parses and validates everything; throws one ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const problems: string[] = [];
  const envDto = plainToInstance(EnvDto, { ...env });
  problems.push(...validationProblems(validateSync(envDto, { forbidUnknownValues: false })));
  const nats = natsConnectionFromEnv(env, problems);
  const { raw, file } = readConfigFile(env, problems);
  const dto = plainToInstance(FileConfigDto, raw);
  problems.push(...validationProblems(validateSync(dto, { forbidUnknownValues: false })));
  // Checked on their own, so that they are listed together with schema problems and with semantic ones.
  const weakSecrets = secretProblems(secretsOf(dto));
  if (problems.length) throw new ConfigError([...problems, ...weakSecrets]);
  problems.push(...weakSecrets);

  // The DTOs are valid from here on: each section applies its defaults and checks what spans several keys.
  const stream = loadStream(dto, problems);
  const sources = loadSources(dto, problems);
  const consoleConfig = loadConsole(dto, sources, problems);
  const auth = loadAuth(dto, problems);
  const limits = loadLimits(dto, problems);
  const delivery = loadDelivery(dto, problems);
  const endpoints = loadEndpoints(dto, delivery, problems);
  const schemas = loadDeclaredSchemas(dto.schemas, file, stream.subjectPrefix, problems);
  const port = envDto.PORT ?? 3000;
  const publicUrl = publicUrlOf(dto.server?.publicUrl, port, problems);
  if (problems.length) throw new ConfigError(problems);

  return {
    port,
    host: envDto.HOST ?? '0.0.0.0',
    natsUrl: nats?.servers.join(','),
    nats,
    dataDir: resolve(envDto.DATA_DIR ?? './data'),
    logLevel: envDto.LOG_LEVEL ?? 'info',
    configFile: file,
    stream,
    idempotency: loadIdempotency(dto),
    ingest: loadIngestLimits(dto),
    limits,
    sources,
    auth,
    socketio: { polling: dto.socketio?.polling ?? false },
    server: {
      trustedProxyHeader: dto.server?.trustedProxyHeader?.toLowerCase(),
      allowedOrigins: dto.server?.allowedOrigins?.map((o) => o.toLowerCase()),
    },
    console: consoleConfig,
    delivery,
    endpoints,
    schemas,
    publicUrl,
  };
}

export const APP_CONFIG = Symbol('APP_CONFIG');
