/**
 * Slack: `X-Slack-Signature: v0=<hex>` of HMAC-SHA256(signing secret, `v0:{ts}:{body}`), with
 * `X-Slack-Request-Timestamp` (unix seconds) within the tolerance both ways.
 */
import type { SourceConfig } from '../../config/app-config.js';
import {
  bodyHash,
  commaSeparatedValues,
  decodeHex,
  hmac,
  jsonString,
  MAX_SIGNATURES,
  safeEqual,
  timestampHeader,
  withinTolerance,
  type VerifyErrorCode,
  type WebhookIdentity,
  type WebhookInput,
  type WebhookScheme,
} from './scheme-helpers.js';

const PREFIX = 'v0=';

export const slackScheme: WebhookScheme = {
  signsDeliveryId: true, // event_id is read from the signed body

  verify(input: WebhookInput, source: SourceConfig): VerifyErrorCode | null {
    const values = commaSeparatedValues(input, 'x-slack-signature');
    const ts = timestampHeader(input, 'x-slack-request-timestamp');
    if (!values.length || ts === undefined) return 'missing_signature';

    const signatures: Buffer[] = [];
    for (const v of values) {
      const sig = v.startsWith(PREFIX) ? decodeHex(v.slice(PREFIX.length)) : undefined;
      if (sig) signatures.push(sig);
    }
    if (signatures.length > MAX_SIGNATURES) return 'invalid_signature';
    const signed = [Buffer.from(`v0:${ts}:`, 'utf8'), input.body];
    const ok = source.secrets.some((secret) => {
      const expected = hmac('sha256', Buffer.from(secret, 'utf8'), signed);
      return signatures.some((sig) => safeEqual(sig, expected));
    });
    if (!ok) return 'invalid_signature';
    return withinTolerance(ts, input.nowMs, source.toleranceMs) ? null : 'timestamp_out_of_tolerance';
  },

  identify(input: WebhookInput, json: unknown): WebhookIdentity {
    return {
      deliveryId: jsonString(json, 'event_id') ?? bodyHash(input.body),
      eventType: jsonString(json, 'event.type') ?? jsonString(json, 'type'),
    };
  },
};
