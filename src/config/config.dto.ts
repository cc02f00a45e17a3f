/**
 * The config file and environment as they are written (strings, units), validated with class-validator.
 * `app-config.ts` turns a valid DTO into the typed tree the rest of the code uses.
 */
import 'reflect-metadata';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  registerDecorator,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';
import { parseDuration, parseSize } from './units.js';

export const VERIFIERS = ['standard-webhooks', 'stripe', 'github', 'shopify', 'slack', 'hmac'] as const;
export type VerifierName = (typeof VERIFIERS)[number];

const TOKEN = /^[A-Za-z0-9_-]+$/;

function unitDecorator(name: string, parse: (v: unknown) => number | null, hint: string) {
  return (options?: ValidationOptions) => (object: object, propertyName: string) =>
    registerDecorator({
      name,
      target: object.constructor,
      propertyName,
      options: { message: `${propertyName} must be ${hint}`, ...options },
      validator: { validate: (value: unknown) => parse(value) !== null },
    });
}
const IsDuration = unitDecorator('isDuration', parseDuration, 'a duration such as 500ms, 30s, 5m, 72h or 7d');
const IsSize = unitDecorator('isSize', parseSize, 'a size such as 512KB, 1MB or 10GB');

export class StreamDto {
  @IsOptional() @Matches(TOKEN, { message: 'stream.name must match [A-Za-z0-9_-]+' }) name?: string;
  @IsOptional()
  @Matches(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, {
    message: 'stream.subjectPrefix must be dot-separated tokens of [A-Za-z0-9_-]',
  })
  subjectPrefix?: string;
  @IsOptional() @IsDuration() maxAge?: string | number;
  @IsOptional() @IsSize() maxBytes?: string | number;
  @IsOptional() @IsInt() @Min(1) @Max(5) replicas?: number;
  @IsOptional() @IsDuration() duplicateWindow?: string | number;
}

export class IdempotencyDto {
  @IsOptional() @IsDuration() ttl?: string | number;
}

export class IngestDto {
  @IsOptional() @IsSize() maxBodyBytes?: string | number;
  @IsOptional() @IsDuration() bodyTimeout?: string | number;
  @IsOptional() @IsInt() @Min(1) @Max(10_000) maxJsonDepth?: number;
  @IsOptional() @IsInt() @Min(1) maxInFlight?: number;
  @IsOptional() @IsDuration() publishTimeout?: string | number;
}

export class LimitsDto {
  @IsOptional() @IsInt() @Min(1) subscriptionsPerConnection?: number;
  @IsOptional() @IsInt() @Min(1) patternsPerSubscription?: number;
  @IsOptional() @IsInt() @Min(1) connectionsPerProcess?: number;
  @IsOptional() @IsInt() @Min(16) clientBufferEvents?: number;
  @IsOptional() @IsInt() @Min(0) ringEvents?: number;
  @IsOptional() @IsInt() @Min(1) concurrentReplays?: number;
  @IsOptional() @IsInt() @Min(1) replaysPerConnection?: number;
  @IsOptional() @IsSize() clientBufferBytes?: string | number;
  @IsOptional() @IsDuration() slowConsumerTimeout?: string | number;
  @IsOptional() @IsInt() @Min(1) messagesPerSecond?: number;
  @IsOptional() @IsInt() @Min(1) messageBurst?: number;
  @IsOptional() @IsInt() @Min(0) anonymousConnections?: number;
  @IsOptional() @IsInt() @Min(1) connectionsPerIp?: number;
}

export class SourceDto {
  @IsString() @Matches(TOKEN, { message: 'sources[].name must match [A-Za-z0-9_-]+' }) name!: string;
  @IsIn(VERIFIERS as unknown as string[], { message: `sources[].verifier must be one of ${VERIFIERS.join(', ')}` })
  verifier!: VerifierName;
  @IsArray()
  @ArrayMinSize(1, { message: 'sources[].secrets needs at least one secret' })
  @IsString({ each: true })
  @MinLength(1, { each: true })
  secrets!: string[];
  @IsOptional() @IsDuration() tolerance?: string | number;
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9-]+$/) header?: string;
  @IsOptional() @IsIn(['sha256', 'sha1', 'sha512']) algorithm?: 'sha256' | 'sha1' | 'sha512';
  @IsOptional() @IsIn(['hex', 'base64']) encoding?: 'hex' | 'base64';
  @IsOptional() @IsString() prefix?: string;
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9-]+$/) idHeader?: string;
  @IsOptional() @IsString() typeField?: string;
  @IsOptional() @IsString() @MinLength(1) defaultType?: string;
  @IsOptional() @IsIn([true, false], { message: 'sources[].demo must be true or false' }) demo?: boolean;
}

export class JwtDto {
  @IsOptional() @IsString() @MinLength(1) secret?: string;
  @IsOptional() @IsString() @MinLength(1) publicKey?: string;
  @IsOptional() @IsString() issuer?: string;
  @IsOptional() @IsString() audience?: string;
  @IsOptional() @IsDuration() clockTolerance?: string | number;
}

export class ApiKeyDto {
  @IsString() @MinLength(1) id!: string;
  @IsString() @MinLength(16, { message: 'auth.apiKeys[].key must be at least 16 characters' }) key!: string;
  @IsOptional() @IsArray() @IsString({ each: true }) publish?: string[];
  @IsOptional() @IsArray() @IsString({ each: true }) subscribe?: string[];
  /** May register outbound endpoints inside its subscribe grant. */
  @IsOptional() @IsBoolean() endpoints?: boolean;
  /** Manages every schema and endpoint; grants no publish or subscribe. */
  @IsOptional() @IsBoolean() admin?: boolean;
}

export class AnonymousDto {
  @IsOptional() @IsArray() @IsString({ each: true }) subscribe?: string[];
}

export class AuthDto {
  @IsOptional() @ValidateNested() @Type(() => JwtDto) jwt?: JwtDto;
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => ApiKeyDto) apiKeys?: ApiKeyDto[];
  @IsOptional() @ValidateNested() @Type(() => AnonymousDto) anonymous?: AnonymousDto;
}

export class SocketIoDto {
  @IsOptional() @IsIn([true, false]) polling?: boolean;
}

export class ConsoleDto {
  @IsOptional()
  @IsString()
  @Matches(TOKEN, { message: 'console.demoSource must be the name of a configured source' })
  demoSource?: string;
}

export class DeliveryDto {
  @IsOptional() @IsDuration() timeout?: string | number;
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(50) @IsDuration({ each: true }) retrySchedule?: (string | number)[];
  @IsOptional() @IsNumber() @Min(0) @Max(1) jitter?: number;
  @IsOptional() @IsDuration() disableAfter?: string | number;
  @IsOptional() @IsDuration() secretGrace?: string | number;
  @IsOptional() @IsDuration() attemptRetention?: string | number;
  @IsOptional() @IsBoolean() allowPrivateNetworks?: boolean;
}

export class EndpointDto {
  @IsString() @Matches(TOKEN, { message: 'endpoints[].id must match [A-Za-z0-9_-]+' }) @MaxLength(64) id!: string;
  @IsString() url!: string;
  @IsArray() @ArrayMinSize(1) @IsString({ each: true }) patterns!: string[];
  @IsOptional() @IsString() @MaxLength(1024) description?: string;
  @IsOptional() @IsString() from?: string;
  @IsOptional() @IsIn(['unordered', 'fifo']) ordering?: 'unordered' | 'fifo';
  @IsOptional() @IsInt() @Min(1) @Max(1000) maxInFlight?: number;
  @IsOptional() @IsNumber() @Min(0.001) rateLimit?: number;
  @IsOptional() @IsObject() headers?: Record<string, unknown>;
  @IsString() secret!: string;
}

export class SchemaDto {
  @IsString() subject!: string;
  @IsArray() @ArrayMinSize(1, { message: 'schemas[].versions needs at least one file' }) @IsString({ each: true })
  versions!: string[];
  @IsOptional() @IsIn(['backward', 'forward', 'full', 'none'], { message: 'schemas[].compatibility must be one of backward, forward, full, none' })
  compatibility?: 'backward' | 'forward' | 'full' | 'none';
  @IsOptional() @IsIn(['enforce', 'warn'], { message: 'schemas[].mode must be enforce or warn' }) mode?: 'enforce' | 'warn';
}

/** An origin as a browser sends it: scheme, host and optional port, nothing else. */
const ORIGIN = /^https?:\/\/[^/\s?#@]+$/;

export class ServerDto {
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9-]+$/, { message: 'server.trustedProxyHeader must be a header name such as X-Forwarded-For' })
  trustedProxyHeader?: string;
  @IsOptional()
  @IsArray()
  @IsString({ each: true })
  @Matches(ORIGIN, {
    each: true,
    message: 'server.allowedOrigins entries must be origins such as https://app.example.com',
  })
  allowedOrigins?: string[];
  @IsOptional() @IsString() @MinLength(1) publicUrl?: string;
}

export class FileConfigDto {
  @IsOptional() @ValidateNested() @Type(() => StreamDto) stream?: StreamDto;
  @IsOptional() @ValidateNested() @Type(() => IdempotencyDto) idempotency?: IdempotencyDto;
  @IsOptional() @ValidateNested() @Type(() => IngestDto) ingest?: IngestDto;
  @IsOptional() @ValidateNested() @Type(() => LimitsDto) limits?: LimitsDto;
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  @ValidateNested({ each: true })
  @Type(() => SourceDto)
  sources?: SourceDto[];
  @IsOptional() @ValidateNested() @Type(() => AuthDto) auth?: AuthDto;
  @IsOptional() @ValidateNested() @Type(() => SocketIoDto) socketio?: SocketIoDto;
  @IsOptional() @ValidateNested() @Type(() => ConsoleDto) console?: ConsoleDto;
  @IsOptional() @ValidateNested() @Type(() => DeliveryDto) delivery?: DeliveryDto;
  @IsOptional() @IsArray() @ArrayMaxSize(1000) @ValidateNested({ each: true }) @Type(() => EndpointDto) endpoints?: EndpointDto[];
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => SchemaDto) schemas?: SchemaDto[];
  @IsOptional() @ValidateNested() @Type(() => ServerDto) server?: ServerDto;
}

export class EnvDto {
  @IsOptional() @Type(() => Number) @IsInt({ message: 'PORT must be an integer' }) @Min(0) @Max(65535) PORT?: number;
  @IsOptional() @IsString() @MinLength(1) HOST?: string;
  @IsOptional() @IsString() @MinLength(1) @MaxLength(4096) NATS_URL?: string;
  @IsOptional() @IsString() HOOKSTREAM_CONFIG?: string;
  @IsOptional() @IsString() @MinLength(1) DATA_DIR?: string;
  @IsOptional()
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    message: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent',
  })
  LOG_LEVEL?: string;
}
