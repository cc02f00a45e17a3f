/**
 * Credentials for the e2e suites: the JWT secret and API keys of the fan-out config, the `auth` block that
 * uses them, and HS256 JWTs made with `jose`.
 */
import { SignJWT } from 'jose';

export const JWT_SECRET = 'hookstream-e2e-jwt-secret-0123456789-abcdefgh';
/** API key that may publish and subscribe to everything under `events.`. */
export const PUBLISH_KEY = 'pk_e2e_publisher_0123456789abcdef';
/** API key that may only subscribe, to `events.acme.>`. */
export const READER_KEY = 'rk_e2e_reader_0123456789abcdef';

/** The `auth` block of the config file the fan-out suites use (exp enforced without leeway). */
export function subscriberAuth(): Record<string, unknown> {
  return {
    jwt: { secret: JWT_SECRET, clockTolerance: '0s' },
    apiKeys: [
      { id: 'publisher', key: PUBLISH_KEY, publish: ['events.>'], subscribe: ['events.>'] },
      { id: 'reader', key: READER_KEY, subscribe: ['events.acme.>'] },
    ],
    anonymous: { subscribe: [] },
  };
}

export interface TokenOptions {
  sub?: string;
  /** `exp`: epoch seconds, or a jose span such as '10m'. Default '10m'. */
  exp?: number | string;
  secret?: string;
}

/** An HS256 JWT with arbitrary claims (use `subscriberToken` for the normal case). */
export async function signJwt(claims: Record<string, unknown>, opts: TokenOptions = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(opts.sub ?? 'u1')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '10m')
    .sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET));
}

/** A JWT granting `subscribe: patterns`. */
export function subscriberToken(patterns: string[], opts: TokenOptions = {}): Promise<string> {
  return signJwt({ subscribe: patterns }, opts);
}
