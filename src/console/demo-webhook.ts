/**
 * The console's "send test webhook": a small payload signed server-side with the demo source's first secret,
 * in that source's own scheme, so it goes through the same verification as a provider's request. The browser
 * never sees the secret. Pure: clock and ids are passed in.
 */
import { createHmac } from 'node:crypto';
import type { SourceConfig } from '../config/app-config.js';
import { standardWebhooksKey } from '../ingest/verifiers/standard-webhooks.js';

export interface SignedDemo {
  headers: Record<string, string[]>;
  body: Buffer;
  contentType: string;
}

/** The event type the demo carries (schemes that take the type from a header get it in their own spelling). */
export const DEMO_TYPE = 'console.test';

function hmacOf(algorithm: 'sha256' | 'sha1' | 'sha512', key: Buffer | string, data: string): Buffer {
  return createHmac(algorithm, key).update(data, 'utf8').digest();
}

/** Sets `value` at a dotted path of a JSON object, creating objects on the way. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = target;
  for (const key of keys.slice(0, -1)) {
    const next = cur[key];
    cur = cur[key] =
      next !== null && typeof next === 'object' && !Array.isArray(next) ? (next as Record<string, unknown>) : {};
  }
  cur[keys[keys.length - 1]] = value;
}

export function signDemoWebhook(source: SourceConfig, nowMs: number, id: string): SignedDemo {
  const secret = source.secrets[0];
  const ts = String(Math.floor(nowMs / 1000));
  // The id is in the body too, so a scheme that dedupes on a body hash never takes two demos for one.
  const data = { message: 'Hello from the Hookstream console', demoId: id, sentAt: new Date(nowMs).toISOString() };
  const headers: Record<string, string[]> = { 'content-type': ['application/json'] };
  let payload: Record<string, unknown>;

  switch (source.verifier) {
    case 'standard-webhooks': {
      payload = { type: DEMO_TYPE, timestamp: new Date(nowMs).toISOString(), data };
      const body = JSON.stringify(payload);
      const msgId = `msg_console_${id}`;
      const sig = hmacOf('sha256', standardWebhooksKey(secret), `${msgId}.${ts}.${body}`).toString('base64');
      Object.assign(headers, { 'webhook-id': [msgId], 'webhook-timestamp': [ts], 'webhook-signature': [`v1,${sig}`] });
      return { headers, body: Buffer.from(body), contentType: 'application/json' };
    }
    case 'stripe': {
      payload = {
        id: `evt_console_${id}`,
        object: 'event',
        type: DEMO_TYPE,
        created: Number(ts),
        data: { object: data },
      };
      const body = JSON.stringify(payload);
      const sig = hmacOf('sha256', secret, `${ts}.${body}`).toString('hex');
      headers['stripe-signature'] = [`t=${ts},v1=${sig}`];
      return { headers, body: Buffer.from(body), contentType: 'application/json' };
    }
    case 'github': {
      payload = { action: 'test', ...data };
      const body = JSON.stringify(payload);
      Object.assign(headers, {
        'x-github-event': ['console'],
        'x-github-hook-id': ['console'],
        'x-github-delivery': [id],
        'x-hub-signature-256': [`sha256=${hmacOf('sha256', secret, body).toString('hex')}`],
      });
      return { headers, body: Buffer.from(body), contentType: 'application/json' };
    }
    case 'shopify': {
      const body = JSON.stringify(data);
      Object.assign(headers, {
        'x-shopify-topic': ['console/test'],
        'x-shopify-event-id': [id],
        'x-shopify-hmac-sha256': [hmacOf('sha256', secret, body).toString('base64')],
      });
      return { headers, body: Buffer.from(body), contentType: 'application/json' };
    }
    case 'slack': {
      payload = {
        type: 'event_callback',
        event_id: `Ev${id.replace(/-/g, '')}`,
        event: { type: 'console_test', ...data },
      };
      const body = JSON.stringify(payload);
      Object.assign(headers, {
        'x-slack-request-timestamp': [ts],
        'x-slack-signature': [`v0=${hmacOf('sha256', secret, `v0:${ts}:${body}`).toString('hex')}`],
      });
      return { headers, body: Buffer.from(body), contentType: 'application/json' };
    }
    case 'hmac': {
      payload = { ...data };
      if (source.typeField) setPath(payload, source.typeField, DEMO_TYPE);
      const body = JSON.stringify(payload);
      const sig = hmacOf(source.algorithm, secret, body).toString(source.encoding);
      headers[source.header ?? 'x-signature'] = [`${source.prefix}${sig}`];
      if (source.idHeader) headers[source.idHeader] = [id];
      return { headers, body: Buffer.from(body), contentType: 'application/json' };
    }
    default: {
      const never: never = source.verifier;
      throw new Error(`unknown verifier ${String(never)}`);
    }
  }
}
