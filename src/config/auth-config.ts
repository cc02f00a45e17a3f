/**
 * The `auth:` section: the JWT verification key, the API keys with their publish and subscribe grants, and what
 * a client without credentials may subscribe to. Every grant is checked to be a valid subject pattern.
 */
import { isValidPattern } from '../events/pattern.js';
import type { AppConfig, JwtConfig } from './app-config.types.js';
import type { FileConfigDto } from './config.dto.js';
import { durationOr } from './units.js';

export function loadAuth(dto: FileConfigDto, problems: string[]): AppConfig['auth'] {
  const jwtDto = dto.auth?.jwt;
  let jwt: JwtConfig | undefined;
  if (jwtDto) {
    if (!!jwtDto.secret === !!jwtDto.publicKey) problems.push('auth.jwt: set exactly one of secret and publicKey');
    jwt = {
      secret: jwtDto.secret,
      publicKey: jwtDto.publicKey,
      issuer: jwtDto.issuer || undefined,
      audience: jwtDto.audience || undefined,
      clockToleranceMs: durationOr(jwtDto.clockTolerance, 30_000),
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
  const anonymous = dto.auth?.anonymous?.subscribe ?? [];
  checkPatterns('auth.anonymous.subscribe', anonymous);
  return { jwt, apiKeys, anonymous: { subscribe: anonymous } };
}
