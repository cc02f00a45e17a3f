/**
 * Bounded verification cost: a request may carry at most MAX_SIGNATURES signatures (every scheme) and, for
 * Stripe, at most MAX_TIMESTAMPS distinct signed timestamps; Stripe computes one HMAC per distinct timestamp.
 * Valid signatures come from the providers' own libraries, hidden among decoys an attacker would add.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { sign as githubSign } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import type { SourceConfig } from '../../config/app-config.js';
import { MAX_SIGNATURES, MAX_TIMESTAMPS, type WebhookInput } from './scheme-helpers.js';
import { parseStripeHeader, signaturesByTimestamp } from './stripe.js';
import { schemeFor } from './verifier.js';

const NOW = 1_700_000_000_000;
const TS = String(NOW / 1000);
const BODY = '{"id":"evt_caps","type":"caps.test"}';

const source = (
  verifier: SourceConfig['verifier'],
  secrets: string[],
  over: Partial<SourceConfig> = {},
): SourceConfig => ({
  name: verifier,
  verifier,
  secrets,
  toleranceMs: 300_000,
  algorithm: 'sha256',
  encoding: 'hex',
  prefix: '',
  defaultType: 'webhook',
  ...over,
});
const input = (headers: Record<string, string[]>): WebhookInput => ({ headers, body: Buffer.from(BODY), nowMs: NOW });
const hex32 = () => randomBytes(32).toString('hex');
const b64_32 = () => randomBytes(32).toString('base64');

const SW_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const STRIPE_SECRET = 'whsec_caps_test';
const SECRET = 'caps-test-secret-0123456789';

interface Case {
  verifier: SourceConfig['verifier'];
  source: SourceConfig;
  /** The request with `decoys` wrong signatures beside the valid one. */
  request(decoys: number): Promise<Record<string, string[]>>;
}

const stripe = new Stripe('sk_test_caps');

const CASES: Case[] = [
  {
    verifier: 'standard-webhooks',
    source: source('standard-webhooks', [SW_SECRET]),
    request: async (decoys) => {
      const valid = new Webhook(SW_SECRET).sign('msg_caps', new Date(NOW), BODY);
      const sigs = [...Array.from({ length: decoys }, () => `v1,${b64_32()}`), valid];
      return { 'webhook-id': ['msg_caps'], 'webhook-timestamp': [TS], 'webhook-signature': [sigs.join(' ')] };
    },
  },
  {
    verifier: 'stripe',
    source: source('stripe', [STRIPE_SECRET]),
    request: async (decoys) => {
      const valid = stripe.webhooks.generateTestHeaderString({
        payload: BODY,
        secret: STRIPE_SECRET,
        timestamp: NOW / 1000,
      });
      const extra = Array.from({ length: decoys }, () => `v1=${hex32()}`);
      return { 'stripe-signature': [[valid, ...extra].join(',')] };
    },
  },
  {
    verifier: 'github',
    source: source('github', [SECRET]),
    request: async (decoys) => {
      const sigs = [...Array.from({ length: decoys }, () => `sha256=${hex32()}`), await githubSign(SECRET, BODY)];
      return { 'x-hub-signature-256': [sigs.join(',')] };
    },
  },
  {
    verifier: 'shopify',
    source: source('shopify', [SECRET]),
    request: async (decoys) => {
      const valid = createHmac('sha256', SECRET).update(BODY).digest('base64');
      return { 'x-shopify-hmac-sha256': [...Array.from({ length: decoys }, b64_32), valid] };
    },
  },
  {
    verifier: 'slack',
    source: source('slack', [SECRET]),
    request: async (decoys) => {
      const valid = `v0=${createHmac('sha256', SECRET).update(`v0:${TS}:${BODY}`).digest('hex')}`;
      const sigs = [...Array.from({ length: decoys }, () => `v0=${hex32()}`), valid];
      return { 'x-slack-signature': [sigs.join(',')], 'x-slack-request-timestamp': [TS] };
    },
  },
  {
    verifier: 'hmac',
    source: source('hmac', [SECRET], { header: 'x-signature', prefix: 'sha256=' }),
    request: async (decoys) => {
      const valid = `sha256=${createHmac('sha256', SECRET).update(BODY).digest('hex')}`;
      // As separate header lines this time: every value counts.
      return { 'x-signature': [...Array.from({ length: decoys }, () => `sha256=${hex32()}`), valid] };
    },
  },
];

describe('signature count cap, every scheme', () => {
  it.each(CASES.map((c) => [c.verifier, c] as const))(
    '%s: a valid signature among up to the cap verifies',
    async (_n, c) => {
      expect(schemeFor(c.verifier).verify(input(await c.request(0)), c.source)).toBeNull();
      expect(schemeFor(c.verifier).verify(input(await c.request(MAX_SIGNATURES - 1)), c.source)).toBeNull();
    },
  );

  it.each(CASES.map((c) => [c.verifier, c] as const))(
    '%s: one signature over the cap is invalid_signature, even with the valid one among them',
    async (_n, c) => {
      expect(schemeFor(c.verifier).verify(input(await c.request(MAX_SIGNATURES)), c.source)).toBe('invalid_signature');
      expect(schemeFor(c.verifier).verify(input(await c.request(1600)), c.source)).toBe('invalid_signature');
    },
  );
});

describe('stripe: signatures grouped by timestamp', () => {
  const valid = () =>
    stripe.webhooks.generateTestHeaderString({ payload: BODY, secret: STRIPE_SECRET, timestamp: NOW / 1000 });
  const verify = (header: string) =>
    schemeFor('stripe').verify(input({ 'stripe-signature': [header] }), source('stripe', [STRIPE_SECRET]));

  it('merges groups that repeat a timestamp, so each t is hashed once', () => {
    const merged = signaturesByTimestamp(parseStripeHeader(['t=5,v1=aa,t=6,v1=bb', 't=5,v1=cc,t=7']));
    expect(merged).toEqual(
      new Map([
        ['5', [Buffer.from('aa', 'hex'), Buffer.from('cc', 'hex')]],
        ['6', [Buffer.from('bb', 'hex')]],
      ]),
    );
  });

  it(`accepts up to ${MAX_TIMESTAMPS} distinct timestamps, refuses more`, () => {
    const decoyGroups = (n: number) => Array.from({ length: n }, (_, i) => `t=${NOW / 1000 - 1 - i},v1=${hex32()}`);
    expect(verify([...decoyGroups(MAX_TIMESTAMPS - 1), valid()].join(','))).toBeNull();
    expect(verify([...decoyGroups(MAX_TIMESTAMPS), valid()].join(','))).toBe('invalid_signature');
  });

  it('refuses the ~1,600 groups of a 16 KiB header without hashing the body for each', () => {
    const groups = Array.from({ length: 1600 }, (_, i) => `t=${NOW / 1000 - i},v1=${'0'.repeat(4)}`).join(',');
    expect(verify(`${valid()},${groups}`)).toBe('invalid_signature');
    expect(signaturesByTimestamp(parseStripeHeader([groups]))).toBeUndefined();
  });
});
