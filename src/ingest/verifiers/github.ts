/**
 * GitHub: `X-Hub-Signature-256: sha256=<hex>` of HMAC-SHA256(secret, raw body). No timestamp is signed, so
 * deduplication on `<hook id>:<delivery guid>` is the only replay defence (the guid alone is shared by every
 * hook subscribed to the event).
 */
import type { SourceConfig } from '../../config/app-config.js';
import {
  bodyHash,
  commaSeparatedValues,
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

const PREFIX = 'sha256=';

export const githubScheme: WebhookScheme = {
  signsDeliveryId: false, // X-GitHub-Delivery and X-GitHub-Hook-ID are not signed

  verify(input: WebhookInput, source: SourceConfig): VerifyErrorCode | null {
    const values = commaSeparatedValues(input, 'x-hub-signature-256');
    if (!values.length) return 'missing_signature';

    const signatures: Buffer[] = [];
    for (const v of values) {
      const sig = v.startsWith(PREFIX) ? decodeHex(v.slice(PREFIX.length)) : undefined;
      if (sig) signatures.push(sig);
    }
    if (signatures.length > MAX_SIGNATURES) return 'invalid_signature';
    const ok = source.secrets.some((secret) => {
      const expected = hmac('sha256', Buffer.from(secret, 'utf8'), [input.body]);
      return signatures.some((sig) => safeEqual(sig, expected));
    });
    return ok ? null : 'invalid_signature';
  },

  identify(input: WebhookInput, json: unknown): WebhookIdentity {
    const hookId = firstHeader(input, 'x-github-hook-id');
    const delivery = firstHeader(input, 'x-github-delivery');
    const deliveryId = delivery === undefined ? bodyHash(input.body) : hookId ? `${hookId}:${delivery}` : delivery;
    const event = firstHeader(input, 'x-github-event');
    const action = jsonString(json, 'action');
    return { deliveryId, eventType: event === undefined ? undefined : action ? `${event}.${action}` : event };
  },
};
