/**
 * What an endpoint may look like: URL syntax, secret format, custom headers, and literal-address checks. Pure (no
 * DNS, no Nest): the config loader and the HTTP API apply the same rules.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { isBlockedAddress } from './ssrf-guard.js';

export const MAX_URL_LENGTH = 2048;
export const SECRET_PREFIX = 'whsec_';
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const MAX_HEADERS = 32;
const MAX_HEADER_VALUE = 4096;

/** Headers the gateway sets itself; an endpoint's own headers may not replace them. */
export const RESERVED_HEADERS = new Set([
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'hookstream-cursor',
  'hookstream-attempt',
  'user-agent',
  'content-type',
  'content-length',
  'host',
  'connection',
  'transfer-encoding',
  'keep-alive',
  'expect',
  'upgrade',
  'te',
  'trailer',
  'proxy-authorization',
  'proxy-connection',
]);

/** `whsec_` + a fresh base64 of 24 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(MIN_SECRET_BYTES).toString('base64');
}

/** `whsec_` + canonical base64 of 24 to 64 bytes. */
export function isValidSecret(secret: unknown): secret is string {
  if (typeof secret !== 'string' || !secret.startsWith(SECRET_PREFIX)) return false;
  const b64 = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return false;
  const bytes = Buffer.from(b64, 'base64');
  // Canonical only: the decoded bytes must encode back to the same text (no silently ignored bits).
  if (bytes.toString('base64') !== b64) return false;
  return bytes.length >= MIN_SECRET_BYTES && bytes.length <= MAX_SECRET_BYTES;
}

/** The URL's host as an address when it is a literal IP (brackets removed), else null. */
export function literalHost(url: URL): string | null {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return isIP(host) ? host : null;
}

/**
 * Parses an endpoint URL: http(s) only, no user info, at most 2,048 characters. WHATWG parsing turns numeric host
 * forms (`2130706433`, `0x7f.1`, `127.1`) into dotted IPv4, so the literal-address check sees what would be dialled.
 * Returns the parsed URL or a reason.
 */
export function parseEndpointUrl(
  value: unknown,
  allowPrivateNetworks: boolean,
): { ok: true; url: URL } | { ok: false; reason: string } {
  if (typeof value !== 'string' || value.length === 0) return { ok: false, reason: 'url must be a non-empty string' };
  if (value.length > MAX_URL_LENGTH) return { ok: false, reason: `url is longer than ${MAX_URL_LENGTH} characters` };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { ok: false, reason: 'url is not a valid absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: 'url must be http or https' };
  if (url.username || url.password) return { ok: false, reason: 'url must not carry user info' };
  if (!url.hostname) return { ok: false, reason: 'url has no host' };
  const ip = literalHost(url);
  if (ip && !allowPrivateNetworks && isBlockedAddress(ip)) {
    return { ok: false, reason: `url points to a private, loopback or reserved address (${ip})` };
  }
  return { ok: true, url };
}

/** An endpoint's own headers: a flat object of string values, no reserved or malformed names. */
export function checkHeaders(
  value: unknown,
): { ok: true; headers: Record<string, string> } | { ok: false; reason: string } {
  if (value === undefined || value === null) return { ok: true, headers: {} };
  if (typeof value !== 'object' || Array.isArray(value)) return { ok: false, reason: 'headers must be an object' };
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_HEADERS) return { ok: false, reason: `at most ${MAX_HEADERS} headers` };
  const out: Record<string, string> = {};
  for (const [name, v] of entries) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/.test(name))
      return { ok: false, reason: `invalid header name ${JSON.stringify(name)}` };
    if (typeof v !== 'string' || v.length > MAX_HEADER_VALUE || /[\r\n\0]/.test(v)) {
      return {
        ok: false,
        reason: `header ${name} must be a string without line breaks, at most ${MAX_HEADER_VALUE} characters`,
      };
    }
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower) || lower.startsWith('webhook-') || lower.startsWith('hookstream-')) {
      return { ok: false, reason: `header ${name} is set by the gateway and cannot be replaced` };
    }
    out[lower] = v;
  }
  return { ok: true, headers: out };
}
