/**
 * Secrets too weak to keep: refused at start, so a guessable webhook secret, JWT key or API key never
 * protects a running gateway. Problems name where the secret is configured, never the secret itself.
 */
import type { ApiKeyDto, FileConfigDto, SourceDto, VerifierName } from './config.dto.js';

/** Standard Webhooks keys are random bytes in base64; the specification asks for 24 to 64 of them. */
export const MIN_STANDARD_WEBHOOKS_KEY_BYTES = 24;
/** Schemes that use the secret text itself as the HMAC key. */
export const MIN_HMAC_SECRET_BYTES = 16;
/** HS256 keys shorter than the hash are below what RFC 7518 §3.2 requires. */
export const MIN_JWT_SECRET_BYTES = 32;

/** The Standard Webhooks secret of config/demo.yaml: public, so acceptable only on the console's demo source. */
export const DEMO_SECRET = 'whsec_ZGVtby1zZWNyZXQtZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9u';

// Values once shipped as examples (docker-compose.yml) and anything that still asks to be changed.
const PLACEHOLDERS = new Set([
  'whsec_change_me',
  'change-me',
  'change-me-to-a-long-random-string',
  'change-me-billing-api-key',
]);
const CHANGE_ME = /change[-_ .]?me|changeme|replace[-_ .]?me/i;

const STRIPE_PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface SecretPolicyInput {
  sources: { name: string; verifier: VerifierName; secrets: string[] }[];
  jwtSecret?: string;
  apiKeys: { key: string }[];
  demoSource?: string;
}

/** The secrets of a file that may still be invalid elsewhere: weak secrets are listed with every other problem. */
export function secretsOf(dto: FileConfigDto): SecretPolicyInput {
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

function isPlaceholder(secret: string): boolean {
  return PLACEHOLDERS.has(secret) || CHANGE_ME.test(secret);
}

/** The key bytes of a Standard Webhooks secret, or null when it is not (whsec_-prefixed) base64. */
function standardWebhooksKeyBytes(secret: string): number | null {
  const b64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!BASE64.test(b64) || b64.replace(/=+$/, '').length % 4 === 1) return null;
  return Buffer.from(b64, 'base64').length;
}

function sourceSecretProblem(verifier: VerifierName, secret: string): string | undefined {
  if (verifier === 'standard-webhooks') {
    const bytes = standardWebhooksKeyBytes(secret);
    if (bytes === null) return 'is not whsec_ followed by base64';
    if (bytes < MIN_STANDARD_WEBHOOKS_KEY_BYTES) {
      return `decodes to ${bytes} bytes; a Standard Webhooks key needs at least ${MIN_STANDARD_WEBHOOKS_KEY_BYTES}`;
    }
    return undefined;
  }
  // Stripe's whsec_ prefix is part of the HMAC key but adds nothing secret to it.
  const keyText =
    verifier === 'stripe' && secret.startsWith(STRIPE_PREFIX) ? secret.slice(STRIPE_PREFIX.length) : secret;
  const bytes = Buffer.byteLength(keyText, 'utf8');
  if (bytes < MIN_HMAC_SECRET_BYTES) {
    const what = verifier === 'stripe' ? ' after whsec_' : '';
    return `is ${bytes} bytes${what}; a ${verifier} secret needs at least ${MIN_HMAC_SECRET_BYTES}`;
  }
  return undefined;
}

/** Every weak or placeholder secret, as config problems. */
export function secretProblems(input: SecretPolicyInput): string[] {
  const problems: string[] = [];
  for (const [i, source] of input.sources.entries()) {
    for (const [j, secret] of source.secrets.entries()) {
      const where = `sources[${i}].secrets[${j}] (source "${source.name}")`;
      if (secret === DEMO_SECRET && source.name !== input.demoSource) {
        problems.push(`${where}: is the public demo secret of config/demo.yaml; generate a secret of your own`);
        continue;
      }
      if (isPlaceholder(secret)) {
        problems.push(`${where}: is a placeholder; set a real secret`);
        continue;
      }
      const weak = sourceSecretProblem(source.verifier, secret);
      if (weak) problems.push(`${where}: ${weak}`);
    }
  }
  if (input.jwtSecret !== undefined) {
    const bytes = Buffer.byteLength(input.jwtSecret, 'utf8');
    if (isPlaceholder(input.jwtSecret)) problems.push('auth.jwt.secret: is a placeholder; set a real secret');
    else if (bytes < MIN_JWT_SECRET_BYTES) {
      problems.push(`auth.jwt.secret: is ${bytes} bytes; an HS256 secret needs at least ${MIN_JWT_SECRET_BYTES}`);
    }
  }
  for (const [i, k] of input.apiKeys.entries()) {
    if (isPlaceholder(k.key)) problems.push(`auth.apiKeys[${i}].key: is a placeholder; set a real key`);
  }
  return problems;
}
