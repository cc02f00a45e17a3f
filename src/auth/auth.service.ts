/**
 * Credentials → grants (docs/configuration.md, docs/protocol.md): JWT, API key or anonymous. Pure apart from
 * `jose` and node:crypto; the Nest provider wiring lives elsewhere.
 */
import { createHash, createPublicKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { AppConfig, ApiKeyConfig } from '../config/app-config.js';
import { allowedBy, isValidPattern } from '../events/pattern.js';
import { validatePublishSubject } from '../events/subject.js';

export type AuthErrorCode = 'unauthorized' | 'forbidden' | 'token_expired';

export class AuthError extends Error {
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface Principal {
  kind: 'jwt' | 'apiKey' | 'anonymous';
  /** JWT `sub` ('' when absent), API key id, or 'anonymous'. */
  id: string;
  /** Patterns this principal may subscribe to. */
  subscribe: string[];
  /** Patterns this principal may publish to (POST /v1/events); only API keys have any. */
  publish: string[];
  /** JWT `exp` in ms: the connection is closed then with `token_expired`. */
  expiresAtMs?: number;
  /** API keys with `admin: true`: manage every schema. */
  admin?: boolean;
}

/** Longer credentials are refused without parsing. */
const MAX_TOKEN_LENGTH = 65_536;

interface VerifyKey {
  key: KeyObject | Uint8Array;
  algorithm: 'HS256' | 'RS256' | 'ES256';
}

/** The configured key alone decides the algorithm; a token's `alg` header can only match it or fail. */
function verifyKeyOf(jwt: NonNullable<AppConfig['auth']['jwt']>): VerifyKey {
  if (jwt.secret) return { key: new TextEncoder().encode(jwt.secret), algorithm: 'HS256' };
  if (!jwt.publicKey) throw new Error('auth.jwt: neither secret nor publicKey is set');
  const key = createPublicKey(jwt.publicKey);
  if (key.asymmetricKeyType === 'rsa') return { key, algorithm: 'RS256' };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { key, algorithm: 'ES256' };
  }
  throw new Error(
    `auth.jwt.publicKey: unsupported key (${key.asymmetricKeyType ?? 'unknown'}); use RSA (RS256) or EC P-256 (ES256)`,
  );
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

function unauthorized(message: string): AuthError {
  return new AuthError('unauthorized', message);
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `token claim "${err.claim}" is invalid: ${err.reason}`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature is invalid';
  return 'token is invalid';
}

export class Authenticator {
  private readonly keys: { config: ApiKeyConfig; digest: Buffer }[];
  private readonly verifyKey: VerifyKey | undefined;
  /** The anonymous grant: one frozen object, since a Socket.IO connection holds its principal while it is open. */
  private readonly anonymous: Principal;

  /** Throws (a start-up error) when auth.jwt.publicKey is not a usable RSA or EC P-256 public key. */
  constructor(
    private readonly config: AppConfig['auth'],
    private readonly clock: () => number = Date.now,
  ) {
    // Compared as SHA-256 digests so the compare is constant-time whatever the lengths.
    this.keys = config.apiKeys.map((k) => ({ config: k, digest: digest(k.key) }));
    this.verifyKey = config.jwt ? verifyKeyOf(config.jwt) : undefined;
    this.anonymous = Object.freeze({
      kind: 'anonymous',
      id: 'anonymous',
      subscribe: Object.freeze([...config.anonymous.subscribe]) as string[],
      publish: Object.freeze([]) as unknown as string[],
    });
  }

  /**
   * A Socket.IO handshake token, or an SSE bearer / access_token. undefined, null or '' → the anonymous grant
   * (possibly empty); a configured API key → its grants; else a JWT. Anything else (including a non-string,
   * as a client may send in `auth.token`) → AuthError('unauthorized').
   */
  async authenticate(token: unknown): Promise<Principal> {
    if (token === undefined || token === null || token === '') {
      return this.anonymous;
    }
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw unauthorized('invalid credentials');
    const key = this.findApiKey(token);
    if (key) return apiKeyPrincipal(key);
    if (!this.verifyKey) throw unauthorized('invalid credentials');
    return this.verifyJwt(token, this.verifyKey);
  }

  /** POST /v1/events: the `Authorization` header must be `Bearer <configured API key>`. */
  authenticateApiKey(authorization: string | undefined): Principal {
    if (typeof authorization !== 'string' || authorization.length > MAX_TOKEN_LENGTH) {
      throw unauthorized('missing API key');
    }
    const m = /^Bearer +([^\s]+) *$/i.exec(authorization);
    if (!m) throw unauthorized('expected "Authorization: Bearer <api key>"');
    const key = this.findApiKey(m[1]);
    if (!key) throw unauthorized('unknown API key');
    return apiKeyPrincipal(key);
  }

  /** Compares against every key, without stopping at a match, so timing says nothing about which matched. */
  private findApiKey(candidate: string): ApiKeyConfig | undefined {
    const d = digest(candidate);
    let found: ApiKeyConfig | undefined;
    for (const k of this.keys) if (timingSafeEqual(d, k.digest) && !found) found = k.config;
    return found;
  }

  private async verifyJwt(token: string, vk: VerifyKey): Promise<Principal> {
    const jwt = this.config.jwt as NonNullable<AppConfig['auth']['jwt']>;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, vk.key, {
        algorithms: [vk.algorithm],
        issuer: jwt.issuer,
        audience: jwt.audience,
        clockTolerance: jwt.clockToleranceMs / 1000,
        currentDate: new Date(this.clock()),
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw unauthorized(describeJoseError(err));
    }
    const subscribe = payload.subscribe;
    if (!Array.isArray(subscribe) || !subscribe.every((p): p is string => typeof p === 'string')) {
      throw unauthorized('token claim "subscribe" must be an array of strings');
    }
    const bad = subscribe.find((p) => !isValidPattern(p));
    if (bad !== undefined)
      throw unauthorized(`token claim "subscribe" holds an invalid pattern: ${JSON.stringify(bad)}`);
    if (payload.sub !== undefined && typeof payload.sub !== 'string')
      throw unauthorized('token claim "sub" is invalid');
    return {
      kind: 'jwt',
      id: payload.sub ?? '',
      subscribe: [...subscribe],
      publish: [],
      expiresAtMs: (payload.exp as number) * 1000,
    };
  }
}

function apiKeyPrincipal(k: ApiKeyConfig): Principal {
  const principal: Principal = { kind: 'apiKey', id: k.id, subscribe: [...k.subscribe], publish: [...k.publish] };
  if (k.admin) principal.admin = true;
  return principal;
}

/**
 * A subscription request: every pattern valid (else 'invalid_subject'; an empty list too), then every pattern
 * inside the principal's subscribe grant (else 'forbidden': refused, never narrowed). null when allowed.
 */
export function checkSubscribe(
  principal: Principal,
  patterns: readonly string[],
): 'invalid_subject' | 'forbidden' | null {
  if (!Array.isArray(patterns) || patterns.length === 0) return 'invalid_subject';
  if (!patterns.every((p) => isValidPattern(p))) return 'invalid_subject';
  return patterns.every((p) => allowedBy(principal.subscribe, p)) ? null : 'forbidden';
}

/**
 * One POST /v1/events subject: a valid literal subject under `<prefix>.` (else 'invalid_subject'), inside the
 * principal's publish grant (else 'forbidden'). null when allowed.
 */
export function checkPublish(
  principal: Principal,
  subject: string,
  prefix: string,
): 'invalid_subject' | 'forbidden' | null {
  if (!validatePublishSubject(subject, prefix)) return 'invalid_subject';
  return allowedBy(principal.publish, subject) ? null : 'forbidden';
}
