/**
 * Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 over `{t}.{body}` keyed with the
 * secret string as UTF-8 (the `whsec_` secret is NOT base64-decoded). Unlike stripe-node, the tolerance
 * applies both ways.
 */
import type { SourceConfig } from '../../config/app-config.js';
import {
  bodyHash,
  decodeHex,
  headerValues,
  hmac,
  jsonString,
  MAX_SIGNATURES,
  MAX_TIMESTAMPS,
  safeEqual,
  withinTolerance,
  type VerifyErrorCode,
  type WebhookIdentity,
  type WebhookInput,
  type WebhookScheme,
} from './scheme-helpers.js';

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

/**
 * The groups merged by timestamp (signatures of equal `t` together, groups without a signature dropped), or
 * undefined when the header carries more than MAX_SIGNATURES signatures or MAX_TIMESTAMPS distinct timestamps.
 * The HMAC covers `{t}.{body}`, so its cost is one pass over the body per distinct `t` and secret: merging makes
 * a header of many groups with one `t` cost one pass, and the caps bound the rest.
 */
export function signaturesByTimestamp(groups: StripeSignatureGroup[]): Map<string, Buffer[]> | undefined {
  const byT = new Map<string, Buffer[]>();
  let count = 0;
  for (const group of groups) {
    if (!group.v1.length) continue;
    count += group.v1.length;
    if (count > MAX_SIGNATURES) return undefined;
    const sigs = byT.get(group.t);
    if (sigs) sigs.push(...group.v1);
    else if (byT.size === MAX_TIMESTAMPS) return undefined;
    else byT.set(group.t, [...group.v1]);
  }
  return byT;
}

export const stripeScheme: WebhookScheme = {
  signsDeliveryId: true, // the event id is read from the signed body

  verify(input: WebhookInput, source: SourceConfig): VerifyErrorCode | null {
    const values = headerValues(input, 'stripe-signature');
    if (!values.length) return 'missing_signature';

    const byT = signaturesByTimestamp(parseStripeHeader(values));
    if (!byT) return 'invalid_signature';
    let signedButStale = false;
    for (const [t, sigs] of byT) {
      const signed = [Buffer.from(`${t}.`, 'utf8'), input.body];
      const ok = source.secrets.some((secret) => {
        const expected = hmac('sha256', Buffer.from(secret, 'utf8'), signed);
        return sigs.some((sig) => safeEqual(sig, expected));
      });
      // A group's own signed timestamp is the one that must be fresh.
      if (ok && withinTolerance(t, input.nowMs, source.toleranceMs)) return null;
      signedButStale ||= ok;
    }
    return signedButStale ? 'timestamp_out_of_tolerance' : 'invalid_signature';
  },

  identify(input: WebhookInput, json: unknown): WebhookIdentity {
    return { deliveryId: jsonString(json, 'id') ?? bodyHash(input.body), eventType: jsonString(json, 'type') };
  },
};
