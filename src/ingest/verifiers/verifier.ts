/**
 * The registry of webhook signature schemes: a source's `verifier` name to its scheme. Each scheme checks, in
 * order: required headers present, signature (every secret × every signature), then timestamp tolerance, so only
 * a validly signed request learns that its timestamp is stale. Schemes are pure: no I/O, the clock is injected.
 *
 * What each signature covers, and so what can be trusted:
 * - standard-webhooks: `webhook-id`, `webhook-timestamp` and the body (id, time and type authenticated);
 * - stripe: `t` and the body (the event id and type are read from the body);
 * - slack: the request timestamp and the body (event_id and type from the body);
 * - github, shopify, hmac: the body only. Delivery ids (`X-GitHub-Delivery`, `X-GitHub-Hook-ID`,
 *   `X-Shopify-Event-Id`, `X-Shopify-Webhook-Id`, the configured idHeader) and event types (`X-GitHub-Event`,
 *   `X-Shopify-Topic`) are not authenticated, and no timestamp bounds a replay: these schemes report
 *   `signsDeliveryId: false` and the ingest service keys their idempotency on the body.
 */
import type { SourceConfig } from '../../config/app-config.js';
import { githubScheme } from './github.js';
import { hmacScheme } from './hmac.js';
import type { WebhookScheme } from './scheme-helpers.js';
import { shopifyScheme } from './shopify.js';
import { slackScheme } from './slack.js';
import { standardWebhooksScheme } from './standard-webhooks.js';
import { stripeScheme } from './stripe.js';

export type { VerifyErrorCode, WebhookIdentity, WebhookInput, WebhookScheme } from './scheme-helpers.js';

export function schemeFor(verifier: SourceConfig['verifier']): WebhookScheme {
  switch (verifier) {
    case 'standard-webhooks':
      return standardWebhooksScheme;
    case 'stripe':
      return stripeScheme;
    case 'github':
      return githubScheme;
    case 'shopify':
      return shopifyScheme;
    case 'slack':
      return slackScheme;
    case 'hmac':
      return hmacScheme;
    default: {
      const never: never = verifier;
      throw new Error(`unknown verifier ${String(never)}`);
    }
  }
}
