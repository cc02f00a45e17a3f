/**
 * The typed configuration tree, built once at start from the environment and the config file
 * (DESIGN.md §2). Nothing outside `src/config` reads `process.env` or the file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { parseDocument, Scalar, visit } from 'yaml';
import { type ApiKeyDto, EnvDto, FileConfigDto, type SourceDto, type VerifierName } from './config.dto.js';
import { isValidPattern } from '../events/pattern.js';
import { parseDuration, parseSize } from './units.js';
import { checkHeaders, isValidSecret, parseEndpointUrl } from '../outbound/endpoint-rules.js';
import { parseStart, decodeCursor } from '../events/cursor.js';
import { natsConnectionFromEnv, type NatsConnectionConfig } from './nats-connection.js';
import { secretProblems, type SecretPolicyInput } from './secret-policy.js';
import { type DeclaredSchema, loadDeclaredSchemas, publicUrlOf } from './schemas-config.js';

export type { VerifierName } from './config.dto.js';
export type { NatsAuth, NatsConnectionConfig } from './nats-connection.js';
export type { DeclaredSchema, SchemaCompatibility, SchemaMode } from './schemas-config.js';

export interface SourceConfig {
  name: string;
  verifier: VerifierName;
  secrets: string[];
  toleranceMs: number;
  /** hmac: the signature header (lower-case). */
  header?: string;
  algorithm: 'sha256' | 'sha1' | 'sha512';
  encoding: 'hex' | 'base64';
  prefix: string;
  /** hmac: header carrying the delivery id (lower-case). */
  idHeader?: string;
  /** hmac: dotted path of the body field carrying the event type. */
  typeField?: string;
  /** Event type when neither the body nor a header gives one. */
  defaultType: string;
  /** Dedicated to demos: the only kind of source the console's demo button may sign for (anyone can forge its events). */
  demo?: boolean;
}

export interface ApiKeyConfig {
  id: string;
  key: string;
  publish: string[];
  subscribe: string[];
  /** May register outbound endpoints inside `subscribe`, and manage its own. */
  endpoints?: boolean;
  /** Manages every endpoint and schema; grants no publish or subscribe by itself. */
  admin?: boolean;
}

/** Outbound webhook delivery (`delivery:`). */
export interface DeliveryConfig {
  timeoutMs: number;
  /** Delay before attempt 2, 3, …; attempts = length + 1. */
  retryScheduleMs: number[];
  /** Each delay is spread by ± this fraction. */
  jitter: number;
  /** An endpoint with no 2xx for this long is disabled (`failing`). */
  disableAfterMs: number;
  /** After a rotation the old secret signs beside the new one this long. */
  secretGraceMs: number;
  attemptRetentionMs: number;
  allowPrivateNetworks: boolean;
}

/** An endpoint declared in the config file: read-only through the API. */
export interface EndpointConfig {
  id: string;
  url: string;
  patterns: string[];
  description: string;
  from: string;
  ordering: 'unordered' | 'fifo';
  maxInFlight: number;
  rateLimit: number | null;
  headers: Record<string, string>;
  secret: string;
}

export interface JwtConfig {
  secret?: string;
  publicKey?: string;
  issuer?: string;
  audience?: string;
  clockToleranceMs: number;
}

export interface AppConfig {
  port: number;
  host: string;
  /** NATS_URL without any user info: safe to log. Set → JetStream, unset → the embedded store. */
  natsUrl?: string;
  /** Servers, credentials and TLS for the JetStream adapter; set exactly when natsUrl is. */
  nats?: NatsConnectionConfig;
  dataDir: string;
  logLevel: string;
  configFile?: string;
  stream: {
    name: string;
    subjectPrefix: string;
    maxAgeMs: number;
    maxBytes: number;
    replicas: number;
    duplicateWindowMs: number;
  };
  idempotency: { ttlMs: number };
  ingest: {
    maxBodyBytes: number;
    bodyTimeoutMs: number;
    maxJsonDepth: number;
    /** Ingests awaiting the store at once; past it, 503 at once. */
    maxInFlight: number;
    /** How long one ingest waits for the store before answering 503. */
    publishTimeoutMs: number;
  };
  limits: {
    subscriptionsPerConnection: number;
    patternsPerSubscription: number;
    connectionsPerProcess: number;
    /** Deliveries queued for one client before it falls back to catch-up. */
    clientBufferEvents: number;
    /** Recent events kept in memory per process to serve short resumes. */
    ringEvents: number;
    /** Catch-up reads from the store running at once per process. */
    concurrentReplays: number;
    /** Of those, the most one connection may hold at once; its other catch-ups wait their turn. */
    replaysPerConnection: number;
    /** Bytes of deliveries queued for one connection before it falls back to catch-up (like clientBufferEvents). */
    clientBufferBytes: number;
    /** A connection that stays behind those bounds this long is closed with reason `slow_consumer`; 0: never. */
    slowConsumerTimeoutMs: number;
    /** Socket.IO messages one connection may send per second, sustained (a token bucket refilled at this rate). */
    messagesPerSecond: number;
    /**
     * The bucket's size: messages one connection may send at once. Past it, messages are refused with
     * `limit_exceeded`; a further full burst while refused closes the connection with reason `rate_limited`.
     */
    messageBurst: number;
    /** Connections without credentials at once per process (part of `connectionsPerProcess`); 0 = none. */
    anonymousConnections: number;
    /** Connections at once from one client address, every transport together. */
    connectionsPerIp: number;
  };
  sources: Map<string, SourceConfig>;
  auth: {
    jwt?: JwtConfig;
    apiKeys: ApiKeyConfig[];
    anonymous: { subscribe: string[] };
  };
  socketio: { polling: boolean };
  server: {
    /**
     * Header (lower-case) whose last address is the client's, set by a reverse proxy this gateway trusts; unset =
     * the socket's peer address. Only set it when every request arrives through that proxy: clients can write it.
     */
    trustedProxyHeader?: string;
    /** Origins whose pages may connect (Socket.IO) or open streams (SSE); unset = any origin. Never with credentials. */
    allowedOrigins?: string[];
  };
  /** `server.publicUrl`: how clients reach this gateway (no trailing slash), the base of `dataschema` URLs. */
  publicUrl: string;
  /** `GET /console`; `demoSource` enables `POST /console/demo-webhook`, signed with that source's first secret. */
  console: { demoSource?: string };
  delivery: DeliveryConfig;
  endpoints: EndpointConfig[];
  /** Schemas declared in the config file (read-only through the API). */
  schemas: DeclaredSchema[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces `${NAME}` with env var NAME; a missing variable is a problem, not an empty string. */
export function interpolate(text: string, env: Record<string, string | undefined>, problems: string[]): string {
  return text.replace(REFERENCE, (_m, name: string) => {
    const value = env[name];
    if (value === undefined) {
      problems.push(`config file refers to \${${name}}, but the environment variable ${name} is not set`);
      return '';
    }
    return value;
  });
}

const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;
const PLAIN_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;

/**
 * `${NAME}` is replaced inside the parsed values, never in the file's text: whatever the variable holds
 * (` #`, quotes, a newline, YAML syntax) arrives as it is. Only an unquoted YAML value made of one reference
 * to a number or true/false becomes that number or boolean, as the same text written there would.
 */
function interpolateYaml(text: string, env: Record<string, string | undefined>, problems: string[]): unknown {
  const doc = parseDocument(text);
  if (doc.errors.length) {
    const hint = text.includes('${') ? ' (inside [ ] or { }, write "${NAME}" in quotes)' : '';
    throw new Error(`${doc.errors[0].message}${hint}`);
  }
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const whole = node.type === Scalar.PLAIN && WHOLE_REFERENCE.test(node.value);
      const value = interpolate(node.value, env, problems);
      if (whole && PLAIN_NUMBER.test(value)) node.value = Number(value);
      else if (whole && (value === 'true' || value === 'false')) node.value = value === 'true';
      else node.value = value;
    },
  });
  return doc.toJS();
}

function interpolateJson(value: unknown, env: Record<string, string | undefined>, problems: string[]): unknown {
  if (typeof value === 'string') return value.includes('${') ? interpolate(value, env, problems) : value;
  if (Array.isArray(value)) return value.map((v) => interpolateJson(v, env, problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateJson(v, env, problems)]));
  }
  return value;
}

function flatten(errors: ValidationError[], path = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const here = path ? (/^\d+$/.test(e.property) ? `${path}[${e.property}]` : `${path}.${e.property}`) : e.property;
    for (const message of Object.values(e.constraints ?? {})) out.push(`${here}: ${message}`);
    if (e.children?.length) out.push(...flatten(e.children, here));
  }
  return out;
}

function readFileConfig(
  env: Record<string, string | undefined>,
  problems: string[],
): { raw: Record<string, unknown>; file?: string } {
  const explicit = env.HOOKSTREAM_CONFIG;
  const file = explicit ? resolve(explicit) : existsSync('hookstream.yaml') ? resolve('hookstream.yaml') : undefined;
  if (!file) return { raw: {} };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`HOOKSTREAM_CONFIG: cannot read ${file}: ${(err as Error).message}`);
    return { raw: {}, file };
  }
  try {
    const parsed: unknown = file.endsWith('.json')
      ? interpolateJson(JSON.parse(text), env, problems)
      : interpolateYaml(text, env, problems);
    if (parsed === null || parsed === undefined) return { raw: {}, file };
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`${file}: the top level must be a mapping`);
      return { raw: {}, file };
    }
    return { raw: parsed as Record<string, unknown>, file };
  } catch (err) {
    problems.push(`${file}: cannot parse: ${(err as Error).message}`);
    return { raw: {}, file };
  }
}

/** The secrets of a file that may still be invalid elsewhere: weak secrets are listed with every other problem. */
function secretsOf(dto: FileConfigDto): SecretPolicyInput {
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x) => typeof x === 'string') : []);
  const list = <T>(v: unknown): T[] => (Array.isArray(v) ? v.filter((x) => x !== null && typeof x === 'object') : []);
  const jwtSecret = dto.auth?.jwt?.secret;
  return {
    sources: list<SourceDto>(dto.sources).map((s) => ({
      name: s.name,
      verifier: s.verifier,
      secrets: strings(s.secrets),
    })),
    jwtSecret: typeof jwtSecret === 'string' ? jwtSecret : undefined,
    apiKeys: list<ApiKeyDto>(dto.auth?.apiKeys).filter((k) => typeof k.key === 'string'),
    demoSource: typeof dto.console?.demoSource === 'string' ? dto.console.demoSource : undefined,
  };
}

const dur = (v: unknown, dflt: number) => (v === undefined ? dflt : (parseDuration(v) as number));
const size = (v: unknown, dflt: number) => (v === undefined ? dflt : (parseSize(v) as number));

/** Parses and validates everything; throws one ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const problems: string[] = [];
  const envDto = plainToInstance(EnvDto, { ...env });
  problems.push(...flatten(validateSync(envDto, { forbidUnknownValues: false })));
  const nats = natsConnectionFromEnv(env, problems);
  const { raw, file } = readFileConfig(env, problems);
  const dto = plainToInstance(FileConfigDto, raw);
  problems.push(...flatten(validateSync(dto, { forbidUnknownValues: false })));
  // Checked on their own, so that they are listed together with schema problems and with semantic ones.
  const weakSecrets = secretProblems(secretsOf(dto));
  if (problems.length) throw new ConfigError([...problems, ...weakSecrets]);
  problems.push(...weakSecrets);

  const stream = dto.stream ?? {};
  const maxAgeMs = dur(stream.maxAge, 7 * 86_400_000);
  const duplicateWindowMs = dur(stream.duplicateWindow, 120_000);
  if (duplicateWindowMs > maxAgeMs) problems.push('stream.duplicateWindow must not exceed stream.maxAge');
  if (duplicateWindowMs < 100) problems.push('stream.duplicateWindow must be at least 100ms');

  const sources = new Map<string, SourceConfig>();
  for (const [i, s] of (dto.sources ?? []).entries()) {
    if (sources.has(s.name)) problems.push(`sources[${i}].name: "${s.name}" is configured twice`);
    // `/v1/events` stores under `v1:<key id>:<id>`: a source of that name could claim (or be claimed by) those keys.
    if (s.name.toLowerCase() === 'v1') problems.push(`sources[${i}].name: "${s.name}" is reserved for POST /v1/events`);
    if (s.verifier === 'hmac' && !s.header) problems.push(`sources[${i}].header: the hmac verifier needs a header`);
    sources.set(s.name, {
      name: s.name,
      verifier: s.verifier,
      secrets: s.secrets,
      toleranceMs: dur(s.tolerance, 300_000),
      header: s.header?.toLowerCase(),
      algorithm: s.algorithm ?? 'sha256',
      encoding: s.encoding ?? 'hex',
      prefix: s.prefix ?? '',
      idHeader: s.idHeader?.toLowerCase(),
      typeField: s.typeField,
      defaultType: s.defaultType ?? 'webhook',
      demo: s.demo ?? false,
    });
  }

  const demoSource = dto.console?.demoSource;
  if (demoSource !== undefined && !sources.has(demoSource)) {
    problems.push(`console.demoSource: "${demoSource}" is not a configured source`);
  } else if (demoSource !== undefined && !sources.get(demoSource)?.demo) {
    // The button signs for anyone who can reach the page: it must never mint a real provider's events.
    problems.push(
      `console.demoSource: source "${demoSource}" is not marked "demo: true"; the console signs test webhooks only for a source dedicated to demos`,
    );
  }

  const jwtDto = dto.auth?.jwt;
  let jwt: JwtConfig | undefined;
  if (jwtDto) {
    if (!!jwtDto.secret === !!jwtDto.publicKey) problems.push('auth.jwt: set exactly one of secret and publicKey');
    jwt = {
      secret: jwtDto.secret,
      publicKey: jwtDto.publicKey,
      issuer: jwtDto.issuer || undefined,
      audience: jwtDto.audience || undefined,
      clockToleranceMs: dur(jwtDto.clockTolerance, 30_000),
    };
  }
  const apiKeys = (dto.auth?.apiKeys ?? []).map((k) => ({
    id: k.id,
    key: k.key,
    publish: k.publish ?? [],
    subscribe: k.subscribe ?? [],
    endpoints: k.endpoints ?? false,
    admin: k.admin ?? false,
  }));
  const keyIds = new Set<string>();
  const checkPatterns = (where: string, patterns: string[]) => {
    for (const p of patterns) if (!isValidPattern(p)) problems.push(`${where}: "${p}" is not a valid subject pattern`);
  };
  for (const [i, k] of apiKeys.entries()) {
    if (keyIds.has(k.id)) problems.push(`auth.apiKeys: id "${k.id}" is configured twice`);
    // The id is a segment of the idempotency key `v1:<key id>:<event id>`: a `:` would let two keys' events collide.
    if (k.id.includes(':')) problems.push(`auth.apiKeys[${i}].id: "${k.id}" must not contain ":"`);
    keyIds.add(k.id);
    checkPatterns(`auth.apiKeys[${i}].publish`, k.publish);
    checkPatterns(`auth.apiKeys[${i}].subscribe`, k.subscribe);
  }
  checkPatterns('auth.anonymous.subscribe', dto.auth?.anonymous?.subscribe ?? []);
  const limits = dto.limits ?? {};
  const subscriptionsPerConnection = limits.subscriptionsPerConnection ?? 100;
  // A reconnecting client resubscribes everything at once: the burst must hold that.
  const messageBurst = limits.messageBurst ?? Math.max(200, 2 * subscriptionsPerConnection);
  if (messageBurst < subscriptionsPerConnection) {
    problems.push(
      'limits.messageBurst must be at least limits.subscriptionsPerConnection (a reconnecting client resubscribes at once)',
    );
  }
  const delivery = loadDelivery(dto, problems);
  const endpoints = loadEndpoints(dto, delivery, problems);
  const subjectPrefix = stream.subjectPrefix ?? 'events';
  const schemas = loadDeclaredSchemas(dto.schemas, file, subjectPrefix, problems);
  const publicUrl = publicUrlOf(dto.server?.publicUrl, envDto.PORT ?? 3000, problems);
  // Below one large envelope, a client could only ever be sent one event at a time.
  const bufferBytes = limits.clientBufferBytes === undefined ? null : parseSize(limits.clientBufferBytes);
  if (bufferBytes !== null && bufferBytes < 64 * 1024) {
    problems.push('limits.clientBufferBytes must be at least 64KB');
  }
  const connectionsPerProcess = limits.connectionsPerProcess ?? 50_000;
  if (problems.length) throw new ConfigError(problems);

  const ingest = dto.ingest ?? {};
  return {
    port: envDto.PORT ?? 3000,
    host: envDto.HOST ?? '0.0.0.0',
    natsUrl: nats?.servers.join(','),
    nats,
    dataDir: resolve(envDto.DATA_DIR ?? './data'),
    logLevel: envDto.LOG_LEVEL ?? 'info',
    configFile: file,
    stream: {
      name: stream.name ?? 'EVENTS',
      subjectPrefix: stream.subjectPrefix ?? 'events',
      maxAgeMs,
      maxBytes: size(stream.maxBytes, 10 * 1024 ** 3),
      replicas: stream.replicas ?? 1,
      duplicateWindowMs,
    },
    idempotency: { ttlMs: dur(dto.idempotency?.ttl, 72 * 3_600_000) },
    ingest: {
      maxBodyBytes: size(ingest.maxBodyBytes, 1024 ** 2),
      bodyTimeoutMs: dur(ingest.bodyTimeout, 30_000),
      maxJsonDepth: ingest.maxJsonDepth ?? 100,
      maxInFlight: ingest.maxInFlight ?? 4096,
      publishTimeoutMs: dur(ingest.publishTimeout, 3_000),
    },
    limits: {
      subscriptionsPerConnection,
      patternsPerSubscription: limits.patternsPerSubscription ?? 32,
      connectionsPerProcess,
      clientBufferEvents: limits.clientBufferEvents ?? 1024,
      ringEvents: limits.ringEvents ?? 10_000,
      concurrentReplays: limits.concurrentReplays ?? 8,
      replaysPerConnection: limits.replaysPerConnection ?? 2,
      clientBufferBytes: size(limits.clientBufferBytes, 1024 ** 2),
      slowConsumerTimeoutMs: dur(limits.slowConsumerTimeout, 30_000),
      messagesPerSecond: limits.messagesPerSecond ?? 50,
      messageBurst,
      // Anonymous clients cannot take every slot: most stay for clients with credentials.
      anonymousConnections: limits.anonymousConnections ?? Math.max(1, Math.floor(connectionsPerProcess / 5)),
      connectionsPerIp: limits.connectionsPerIp ?? 1000,
    },
    sources,
    auth: { jwt, apiKeys, anonymous: { subscribe: dto.auth?.anonymous?.subscribe ?? [] } },
    socketio: { polling: dto.socketio?.polling ?? false },
    server: {
      trustedProxyHeader: dto.server?.trustedProxyHeader?.toLowerCase(),
      allowedOrigins: dto.server?.allowedOrigins?.map((o) => o.toLowerCase()),
    },
    console: { demoSource },
    delivery,
    endpoints,
    schemas,
    publicUrl,
  };
}

function loadDelivery(dto: FileConfigDto, problems: string[]): DeliveryConfig {
  const d = dto.delivery ?? {};
  const retryScheduleMs = (d.retrySchedule ?? ['5s', '5m', '30m', '2h', '5h', '10h', '10h']).map(
    (v) => parseDuration(v) as number,
  );
  const timeoutMs = dur(d.timeout, 15_000);
  if (timeoutMs < 1) problems.push('delivery.timeout must be at least 1ms');
  return {
    timeoutMs,
    retryScheduleMs,
    jitter: d.jitter ?? 0.2,
    disableAfterMs: dur(d.disableAfter, 5 * 86_400_000),
    secretGraceMs: dur(d.secretGrace, 24 * 3_600_000),
    attemptRetentionMs: dur(d.attemptRetention, 7 * 86_400_000),
    allowPrivateNetworks: d.allowPrivateNetworks ?? false,
  };
}

function loadEndpoints(dto: FileConfigDto, delivery: DeliveryConfig, problems: string[]): EndpointConfig[] {
  const out: EndpointConfig[] = [];
  const ids = new Set<string>();
  for (const [i, e] of (dto.endpoints ?? []).entries()) {
    const at = `endpoints[${i}]`;
    if (ids.has(e.id)) problems.push(`${at}.id: "${e.id}" is configured twice`);
    ids.add(e.id);
    const url = parseEndpointUrl(e.url, delivery.allowPrivateNetworks);
    if (!url.ok) problems.push(`${at}.url: ${url.reason}`);
    for (const p of e.patterns) if (!isValidPattern(p)) problems.push(`${at}.patterns: "${p}" is not a valid subject pattern`);
    if (!isValidSecret(e.secret)) problems.push(`${at}.secret: must be whsec_ followed by base64 of 24 to 64 bytes`);
    const headers = checkHeaders(e.headers);
    if (!headers.ok) problems.push(`${at}.headers: ${headers.reason}`);
    const from = e.from ?? 'latest';
    if (!parseStart(from) && !decodeCursor(from)) problems.push(`${at}.from: must be earliest, latest, an RFC 3339 time or a cursor`);
    const ordering = e.ordering ?? 'unordered';
    out.push({
      id: e.id,
      url: e.url,
      patterns: e.patterns,
      description: e.description ?? '',
      from,
      ordering,
      maxInFlight: ordering === 'fifo' ? 1 : (e.maxInFlight ?? 16),
      rateLimit: e.rateLimit ?? null,
      headers: headers.ok ? headers.headers : {},
      secret: e.secret,
    });
  }
  return out;
}

export const APP_CONFIG = Symbol('APP_CONFIG');
