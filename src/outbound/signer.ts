/**
 * Standard Webhooks signatures for outbound requests: HMAC-SHA256 over `<id>.<timestamp>.<body>` with the secret's
 * base64-decoded bytes, `v1,<base64>`. During a rotation grace both the new and the old secret sign, space-separated,
 * so a receiver holding either verifies. Key handling is the ingest verifier's own.
 */
import { createHmac } from 'node:crypto';
import { standardWebhooksKey } from '../ingest/verifiers/standard-webhooks.js';

/** The `webhook-signature` value for one request; `secrets` newest first, at least one. */
export function signStandardWebhook(
  id: string,
  timestampSeconds: number,
  body: Uint8Array,
  secrets: readonly string[],
): string {
  if (secrets.length === 0) throw new RangeError('signStandardWebhook needs at least one secret');
  const prefix = Buffer.from(`${id}.${timestampSeconds}.`, 'utf8');
  return secrets
    .map((secret) => {
      const mac = createHmac('sha256', standardWebhooksKey(secret));
      mac.update(prefix);
      mac.update(body);
      return `v1,${mac.digest('base64')}`;
    })
    .join(' ');
}
