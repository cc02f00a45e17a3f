/**
 * Mapping of events to NATS subjects and validation of first-party publish subjects (docs/protocol.md).
 * Pure: no Nest or NATS import.
 */

/** At most this many type tokens are kept, so a subject has at most prefix + source + 16 tokens. */
export const MAX_TYPE_TOKENS = 16;
/**
 * A type token longer than this is cut. Not in the DESIGN: without a cap a provider-chosen type could build a
 * subject longer than NATS's control line (4 KiB by default), and every retry of that delivery would fail.
 */
export const MAX_TYPE_TOKEN_LENGTH = 64;
/** Longest subject accepted by POST /v1/events (and longest pattern a client may send). */
export const MAX_SUBJECT_LENGTH = 1024;
/** Tokens a published subject may have after the prefix (source + 16 type tokens is 17; one spare, as specified). */
export const MAX_TOKENS_AFTER_PREFIX = 18;

const SAFE_TOKEN = /^[A-Za-z0-9_-]+$/;
const SUBJECT = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

function isSafeCode(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    c === 0x5f || // _
    c === 0x2d // -
  );
}

/**
 * Makes one subject token: every code point outside `[A-Za-z0-9_-]` becomes `_` (one `_` per code point, so an
 * emoji is one `_`; a lone surrogate is one `_` too); the empty string becomes `_`.
 */
export function sanitizeToken(s: string): string {
  if (s.length === 0) return '_';
  if (SAFE_TOKEN.test(s)) return s;
  let out = '';
  for (const ch of s) out += isSafeCode(ch.codePointAt(0) as number) ? ch : '_';
  return out;
}

/** Sanitizes and truncates one type token to MAX_TYPE_TOKEN_LENGTH code points. */
function typeToken(raw: string): string {
  // 2 × MAX code units always hold the first MAX code points: skip sanitizing what would be cut anyway.
  const t = sanitizeToken(raw.length > 2 * MAX_TYPE_TOKEN_LENGTH ? raw.slice(0, 2 * MAX_TYPE_TOKEN_LENGTH) : raw);
  if (t.length <= MAX_TYPE_TOKEN_LENGTH) return t;
  // Sanitized tokens are ASCII only, so code units are code points here.
  return t.slice(0, MAX_TYPE_TOKEN_LENGTH);
}

/**
 * Splits an event type on `.` and `/`, sanitizes every token (empty → `_`) and keeps the first 16.
 * Scans only as far as needed, so a huge type costs no more than its first 16 tokens.
 */
export function typeTokens(type: string): string[] {
  const tokens: string[] = [];
  let start = 0;
  for (let i = 0; i <= type.length && tokens.length < MAX_TYPE_TOKENS; i++) {
    if (i === type.length || type[i] === '.' || type[i] === '/') {
      tokens.push(typeToken(type.slice(start, i)));
      start = i + 1;
    }
  }
  return tokens;
}

/**
 * The subject an event is stored under: `<prefix>.<source>.<type tokens>`. The source is sanitized as ONE token
 * (a `.` in it cannot add a level); the prefix is trusted configuration and used as is.
 */
export function eventSubject(prefix: string, source: string, type: string): string {
  return `${prefix}.${sanitizeToken(source)}.${typeTokens(type).join('.')}`;
}

/**
 * Validates a subject given to POST /v1/events: literal tokens `[A-Za-z0-9_-]+` only (no wildcard, no empty
 * token, no space), under `<prefix>.`, with 1 to 18 tokens after the prefix, at most 1024 characters.
 */
export function validatePublishSubject(subject: string, prefix: string): boolean {
  if (typeof subject !== 'string' || subject.length > MAX_SUBJECT_LENGTH) return false;
  if (!subject.startsWith(`${prefix}.`) || !SUBJECT.test(subject)) return false;
  const prefixTokens = prefix.split('.').length;
  let tokens = 1;
  for (let i = 0; i < subject.length; i++) if (subject.charCodeAt(i) === 0x2e) tokens++;
  return tokens > prefixTokens && tokens <= prefixTokens + MAX_TOKENS_AFTER_PREFIX;
}
