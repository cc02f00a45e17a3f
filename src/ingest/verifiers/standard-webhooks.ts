/**
 * Standard Webhooks v1 (and Svix, whose headers are the `svix-*` fallbacks): HMAC-SHA256 over
 * `{id}.{timestamp}.{body}` with the base64-decoded secret; `webhook-signature` holds space-separated
 * `v1,<base64>` entries. Other versions (v1a, v2) are ignored, as the reference libraries do.
 */
import type { SourceConfig } from '../../config/app-config.js';
import {
  bodyHash,
  decodeBase64,
  firstHeader,
  headerValues,
  hmac,
  jsonString,
  MAX_SIGNATURES,
  safeEqual,
  withinTolerance,
  type VerifyErrorCode,
  type WebhookIdentity,
  type WebhookInput,
  type WebhookScheme,
} from './scheme-helpers.js';

const SECRET_PREFIX = 'whsec_';

/** The key bytes: base64 after an optional `whsec_` prefix (the libraries accept a bare base64 secret too). */
export function standardWebhooksKey(secret: string): Buffer {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  return Buffer.from(b64, 'base64');
}

function pick(input: WebhookInput, suffix: 'id' | 'timestamp' | 'signature'): string[] {
  const primary = headerValues(input, `webhook-${suffix}`);
  return primary.length ? primary : headerValues(input, `svix-${suffix}`);
}

/** Every `v1` signature, as bytes, from all values of the header. */
export function parseStandardSignatures(values: string[]): Buffer[] {
  const out: Buffer[] = [];
  for (const value of values) {
    for (let token of value.split(/\s+/)) {
      // A repeated header joined by Node reads "v1,a, v1,b": drop the joining comma.
      token = token.replace(/,+$/, '');
      const comma = token.indexOf(',');
      if (comma < 0 || token.slice(0, comma) !== 'v1') continue;
      const sig = decodeBase64(token.slice(comma + 1));
      if (sig) out.push(sig);
    }
  }
  return out;
}

export const standardWebhooksScheme: WebhookScheme = {
  signsDeliveryId: true, // webhook-id is part of the signed content

  verify(input: WebhookInput, source: SourceConfig): VerifyErrorCode | null {
    const id = pick(input, 'id')[0];
    // Timestamps hold no comma: of a comma-joined repeated header, the first part.
    const ts = pick(input, 'timestamp')[0]?.split(',')[0].trim();
    const sigValues = pick(input, 'signature');
    if (!id || !ts || !sigValues.length) return 'missing_signature';

    const signatures = parseStandardSignatures(sigValues);
    if (signatures.length > MAX_SIGNATURES) return 'invalid_signature';
    const signed = [Buffer.from(`${id}.${ts}.`, 'utf8'), input.body];
    const ok = source.secrets.some((secret) => {
      const expected = hmac('sha256', standardWebhooksKey(secret), signed);
      return signatures.some((sig) => safeEqual(sig, expected));
    });
    if (!ok) return 'invalid_signature';
    return withinTolerance(ts, input.nowMs, source.toleranceMs) ? null : 'timestamp_out_of_tolerance';
  },

  identify(input: WebhookInput, json: unknown): WebhookIdentity {
    return {
      deliveryId: firstHeader(input, 'webhook-id') ?? firstHeader(input, 'svix-id') ?? bodyHash(input.body),
      eventType: jsonString(json, 'type'),
    };
  },
};
