/** Signs webhooks with the providers' own libraries, so e2e tests never trust our code to sign for us. */
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { sign as githubSign } from '@octokit/webhooks-methods';

export const ACME_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
export const STRIPE_SECRET = 'whsec_test_secret_for_e2e';
export const GITHUB_SECRET = "It's a Secret to Everybody";
export const RAW_SECRET = 'raw-hmac-secret-0123456789';

const stripe = new Stripe('sk_test_hookstream');

export interface SignedRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A Standard Webhooks delivery signed by the official `standardwebhooks` library. */
export function standardWebhook(
  payload: unknown,
  opts: { id?: string; date?: Date; source?: string; secret?: string } = {},
): SignedRequest {
  const id = opts.id ?? `msg_${randomUUID()}`;
  const date = opts.date ?? new Date();
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const signature = new Webhook(opts.secret ?? ACME_SECRET).sign(id, date, body);
  return {
    path: `/webhooks/${opts.source ?? 'acme'}`,
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(date.getTime() / 1000)),
      'webhook-signature': signature,
    },
    body,
  };
}

export function stripeWebhook(event: { id: string; type: string; [k: string]: unknown }, timestamp?: number): SignedRequest {
  const body = JSON.stringify(event);
  const header = stripe.webhooks.generateTestHeaderString({
    payload: body,
    secret: STRIPE_SECRET,
    timestamp: timestamp ?? Math.floor(Date.now() / 1000),
  });
  return { path: '/webhooks/stripe', headers: { 'content-type': 'application/json', 'stripe-signature': header }, body };
}

export async function githubWebhook(
  event: string,
  payload: unknown,
  opts: { hookId?: string; delivery?: string } = {},
): Promise<SignedRequest> {
  const body = JSON.stringify(payload);
  return {
    path: '/webhooks/github',
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-hook-id': opts.hookId ?? '42',
      'x-github-delivery': opts.delivery ?? randomUUID(),
      'x-hub-signature-256': await githubSign(GITHUB_SECRET, body),
    },
    body,
  };
}

/** The sources block the e2e suites configure. */
export const E2E_SOURCES = [
  { name: 'acme', verifier: 'standard-webhooks', secrets: [ACME_SECRET], tolerance: '5m' },
  { name: 'stripe', verifier: 'stripe', secrets: [STRIPE_SECRET] },
  { name: 'github', verifier: 'github', secrets: [GITHUB_SECRET] },
  { name: 'raw', verifier: 'hmac', header: 'X-Signature', prefix: 'sha256=', idHeader: 'X-Delivery', secrets: [RAW_SECRET] },
];

/** POSTs a signed request with fetch (no client-side rewriting of the body). */
export async function post(baseUrl: string, req: SignedRequest): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(baseUrl + req.path, { method: 'POST', headers: req.headers, body: req.body });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body, headers: res.headers };
}
