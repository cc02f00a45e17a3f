/**
 * Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 over `{t}.{body}` keyed with the
 * secret string as UTF-8 (the `whsec_` secret is NOT base64-decoded). Unlike stripe-node, the tolerance
 * applies both ways (DESIGN §3).
 */
import type { SourceConfig } from '../../config/app-config.js';
import {
  bodyHash,
  decodeHex,
  headerValues,
  hmac,
  jsonString,
  safeEqual,
  withinTolerance,
  type VerifyErrorCode,
  type WebhookIdentity,
  type WebhookInput,
  type WebhookScheme,
} from './verifier.js';

export interface StripeSignatureGroup {
  t: string;
  /** The `v1` signatures, as bytes (malformed hex dropped). */
  v1: Buffer[];
}

/**
 * Groups `t` with its `v1` signatures. Each `t=` opens a group (a repeated header joined by Node reads
 * "t=1,v1=a, t=2,v1=b"); a `v1` before any `t` in a value joins that value's first group. Each HMAC is thus
 * tried against its own timestamp only, never every `t` × every `v1`.
 */
export function parseStripeHeader(values: string[]): StripeSignatureGroup[] {
  const groups: StripeSignatureGroup[] = [];
  for (const value of values) {
    const orphans: Buffer[] = [];
    let current: StripeSignatureGroup | undefined;
    for (const raw of value.split(',')) {
      const part = raw.trim();
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const key = part.slice(0, eq);
      const val = part.slice(eq + 1);
      if (key === 't') {
        current = { t: val, v1: current ? [] : orphans };
        groups.push(current);
      } else if (key === 'v1') {
        const sig = decodeHex(val);
        if (sig) (current ? current.v1 : orphans).push(sig);
      }
    }
  }
  return groups;
}

export const stripeScheme: WebhookScheme = {
  verify(input: WebhookInput, source: SourceConfig): VerifyErrorCode | null {
    const values = headerValues(input, 'stripe-signature');
    if (!values.length) return 'missing_signature';

    let signedButStale = false;
    for (const group of parseStripeHeader(values)) {
      if (!group.v1.length) continue;
      const signed = [Buffer.from(`${group.t}.`, 'utf8'), input.body];
      const ok = source.secrets.some((secret) => {
        const expected = hmac('sha256', Buffer.from(secret, 'utf8'), signed);
        return group.v1.some((sig) => safeEqual(sig, expected));
      });
      // A group's own signed timestamp is the one that must be fresh.
      if (ok && withinTolerance(group.t, input.nowMs, source.toleranceMs)) return null;
      signedButStale ||= ok;
    }
    return signedButStale ? 'timestamp_out_of_tolerance' : 'invalid_signature';
  },

  identify(input: WebhookInput, json: unknown): WebhookIdentity {
    return { deliveryId: jsonString(json, 'id') ?? bodyHash(input.body), eventType: jsonString(json, 'type') };
  },
};
