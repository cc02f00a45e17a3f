/**
 * Shopify: `X-Shopify-Hmac-Sha256: <base64>` of HMAC-SHA256(secret, raw body), compared as decoded bytes.
 * No timestamp is signed (`X-Shopify-Triggered-At` is not covered by the HMAC), so deduplication is the
 * replay defence.
 */
import type { SourceConfig } from '../../config/app-config.js';
import {
  bodyHash,
  commaSeparatedValues,
  decodeBase64,
  firstHeader,
  hmac,
  MAX_SIGNATURES,
  safeEqual,
  type VerifyErrorCode,
  type WebhookIdentity,
  type WebhookInput,
  type WebhookScheme,
} from './scheme-helpers.js';

export const shopifyScheme: WebhookScheme = {
  signsDeliveryId: false, // X-Shopify-Event-Id and X-Shopify-Webhook-Id are not signed

  verify(input: WebhookInput, source: SourceConfig): VerifyErrorCode | null {
    const values = commaSeparatedValues(input, 'x-shopify-hmac-sha256');
    if (!values.length) return 'missing_signature';

    const signatures = values.map(decodeBase64).filter((s): s is Buffer => s !== undefined);
    if (signatures.length > MAX_SIGNATURES) return 'invalid_signature';
    const ok = source.secrets.some((secret) => {
      const expected = hmac('sha256', Buffer.from(secret, 'utf8'), [input.body]);
      return signatures.some((sig) => safeEqual(sig, expected));
    });
    return ok ? null : 'invalid_signature';
  },

  identify(input: WebhookInput): WebhookIdentity {
    return {
      // The event id is Shopify's recommended duplicate key; the webhook id is per delivery, stable on retry.
      deliveryId:
        firstHeader(input, 'x-shopify-event-id') ?? firstHeader(input, 'x-shopify-webhook-id') ?? bodyHash(input.body),
      eventType: firstHeader(input, 'x-shopify-topic'),
    };
  },
};
