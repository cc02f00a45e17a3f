/**
 * What every webhook signature scheme shares: the input and answer types and the pure helpers (header lookup,
 * strict decoding, constant-time compare, tolerance). No scheme is imported here, so each scheme module and the
 * registry (verifier.ts) depend on this one and never on each other.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { SourceConfig } from '../../config/app-config.js';
import type { VerifyErrorCode } from '../../protocol/errors.js';

export type { VerifyErrorCode };

export interface WebhookInput {
  /** Header names lower-cased; every value of a repeated header, in order (a header sent 2x = 2 entries; a value may also contain comma-joined values as Node joins some). */
  headers: Record<string, string[] | undefined>;
  body: Buffer; // raw request bytes
  nowMs: number; // injected clock
}

export interface WebhookIdentity {
  deliveryId: string;
  eventType: string | undefined;
}

export interface WebhookScheme {
  /**
   * null = verified. Order of checks: required headers present (else missing_signature), signature
   * (invalid_signature), THEN timestamp tolerance both ways (timestamp_out_of_tolerance). A non-numeric timestamp
   * is invalid_signature if the signature does not match, else timestamp_out_of_tolerance.
   */
  verify(input: WebhookInput, source: SourceConfig): VerifyErrorCode | null;
  /**
   * Delivery id (idempotency key, WITHOUT the source prefix) and event type. `json` is the parsed body when it is
   * JSON, else undefined. Falls back to sha256-hex of the body as delivery id where the scheme has no id of its
   * own. eventType undefined = caller uses source.defaultType.
   */
  identify(input: WebhookInput, json: unknown, source: SourceConfig): WebhookIdentity;
  /**
   * Whether the delivery id is covered by the signature (directly, or because it is read from the signed body).
   * When it is not, idempotency is bound to the body instead (IngestService), so an unsigned header can neither
   * replay a captured body under new ids nor pre-claim an id that a real delivery will carry.
   */
  readonly signsDeliveryId: boolean;
}

export const DEFAULT_TOLERANCE_MS = 300_000;

/**
 * The most signatures one request may carry, whatever the scheme (every value of the header counted, after
 * splitting). Providers send one per active secret, two during a rotation; checking more only lets an
 * unauthenticated client multiply the gateway's work, so such a request is refused as invalid_signature
 * before any HMAC is computed.
 */
export const MAX_SIGNATURES = 8;

/**
 * Stripe: the most distinct signed timestamps (`t=`) one request may carry. Each costs one HMAC over the whole
 * body per secret; Stripe sends one.
 */
export const MAX_TIMESTAMPS = 3;

/** Constant-time equality; unequal lengths are simply false (an HMAC's length is no secret). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** Every non-empty (trimmed) value of a header, in order; names are looked up lower-case. */
export function headerValues(input: WebhookInput, name: string): string[] {
  const key = name.toLowerCase();
  // Own properties only: a configured header named like an Object.prototype member ("constructor") is absent.
  const values = Object.hasOwn(input.headers, key) ? input.headers[key] : undefined;
  if (!values) return [];
  const out: string[] = [];
  for (const v of values) {
    const t = v.trim();
    if (t) out.push(t);
  }
  return out;
}

/** First non-empty value of a header, as sent (a single-valued header such as an id). */
export function firstHeader(input: WebhookInput, name: string): string | undefined {
  return headerValues(input, name)[0];
}

/** All values of a list header, with comma-joined values (Node's join of a repeated header) split apart. */
export function commaSeparatedValues(input: WebhookInput, name: string): string[] {
  const out: string[] = [];
  for (const v of headerValues(input, name)) {
    for (const part of v.split(',')) {
      const t = part.trim();
      if (t) out.push(t);
    }
  }
  return out;
}

/** A timestamp header: the first value, and of a comma-joined value its first part (timestamps hold no comma). */
export function timestampHeader(input: WebhookInput, name: string): string | undefined {
  const v = firstHeader(input, name);
  return v === undefined ? undefined : v.split(',')[0].trim() || undefined;
}

export function hmac(algorithm: 'sha256' | 'sha1' | 'sha512', key: Buffer | string, data: Buffer[]): Buffer {
  const h = createHmac(algorithm, key);
  for (const d of data) h.update(d);
  return h.digest();
}

export function bodyHash(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

const HEX = /^(?:[0-9a-fA-F]{2})+$/;
/** Hex → bytes, case-insensitive; anything not plain even-length hex is undefined (Buffer.from would truncate). */
export function decodeHex(s: string): Buffer | undefined {
  return HEX.test(s) ? Buffer.from(s, 'hex') : undefined;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/**
 * Standard base64 → bytes, refusing what Buffer.from would silently accept (stray characters, non-zero
 * trailing bits), so that two different strings never decode to the same signature. Padding optional.
 */
export function decodeBase64(s: string): Buffer | undefined {
  if (!BASE64.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64');
  const unpadded = s.replace(/=+$/, '');
  if (bytes.toString('base64').replace(/=+$/, '') !== unpadded) return undefined;
  if (s.length !== unpadded.length && s.length % 4 !== 0) return undefined;
  return bytes;
}

const UNIX_SECONDS = /^[0-9]+$/;
/**
 * Whether a unix-seconds timestamp string is within `toleranceMs` of now, both ways. Anything but a plain
 * decimal integer within the safe range (`1e9`, `0x…`, `-1`, `1.5`, empty, huge) is out of tolerance.
 */
export function withinTolerance(ts: string, nowMs: number, toleranceMs: number): boolean {
  if (!UNIX_SECONDS.test(ts)) return false;
  const seconds = Number(ts);
  if (!Number.isSafeInteger(seconds)) return false;
  const tolerance = Number.isFinite(toleranceMs) && toleranceMs >= 0 ? toleranceMs : DEFAULT_TOLERANCE_MS;
  return Math.abs(nowMs - seconds * 1000) <= tolerance;
}

/** A string-valued property of a JSON object, else undefined (empty strings count as absent). */
export function jsonString(json: unknown, path: string): string | undefined {
  let cur: unknown = json;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return typeof cur === 'string' && cur !== '' ? cur : undefined;
}
