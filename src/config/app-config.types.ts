/**
 * The typed configuration tree the rest of the code reads: every value parsed, defaulted and cross-checked by
 * loadConfig (app-config.ts). Types only, so any module may import them without pulling in the loader.
 */
import type { VerifierName } from './config.dto.js';
import type { NatsConnectionConfig } from './nats-connection.js';
import type { DeclaredSchema } from './schemas-config.js';

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
