/**
 * Generic HMAC: the signature in `source.header`, HMAC-`source.algorithm`(secret, raw body) encoded
 * `source.encoding`, behind an optional `source.prefix` that must be present. No timestamp is signed.
 */
import type { SourceConfig } from '../../config/app-config.js';
import {
  bodyHash,
  commaSeparatedValues,
  decodeBase64,
  decodeHex,
  firstHeader,
  hmac,
  jsonString,
  MAX_SIGNATURES,
  safeEqual,
  type VerifyErrorCode,
  type WebhookIdentity,
  type WebhookInput,
  type WebhookScheme,
} from './scheme-helpers.js';

export const hmacScheme: WebhookScheme = {
  signsDeliveryId: false, // the id header is not signed

  verify(input: WebhookInput, source: SourceConfig): VerifyErrorCode | null {
    // The config refuses an hmac source without a header; without one nothing can be verified.
    const values = source.header ? commaSeparatedValues(input, source.header) : [];
    if (!values.length) return 'missing_signature';

    const decode = source.encoding === 'base64' ? decodeBase64 : decodeHex;
    const signatures: Buffer[] = [];
    for (const v of values) {
      const sig = v.startsWith(source.prefix) ? decode(v.slice(source.prefix.length)) : undefined;
      if (sig) signatures.push(sig);
    }
    if (signatures.length > MAX_SIGNATURES) return 'invalid_signature';
    const ok = source.secrets.some((secret) => {
      const expected = hmac(source.algorithm, Buffer.from(secret, 'utf8'), [input.body]);
      return signatures.some((sig) => safeEqual(sig, expected));
    });
    return ok ? null : 'invalid_signature';
  },

  identify(input: WebhookInput, json: unknown, source: SourceConfig): WebhookIdentity {
    const id = source.idHeader ? firstHeader(input, source.idHeader) : undefined;
    return {
      deliveryId: id ?? bodyHash(input.body),
      eventType: source.typeField ? jsonString(json, source.typeField) : undefined,
    };
  },
};
