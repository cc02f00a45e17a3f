import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { SourceConfig } from '../../config/app-config.js';
import { shopifyScheme as scheme } from './shopify.js';
import { bodyHash, type WebhookInput } from './scheme-helpers.js';

const source = (over: Partial<SourceConfig> = {}): SourceConfig => ({
  name: 'shop',
  verifier: 'shopify',
  secrets: [],
  toleranceMs: 300_000,
  algorithm: 'sha256',
  encoding: 'hex',
  prefix: '',
  defaultType: 'webhook',
  ...over,
});
const input = (headers: Record<string, string | string[]>, body: string | Buffer, nowMs = 0): WebhookInput => ({
  headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v : [v]])),
  body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  nowMs,
});

// Derived vector: computed with node:crypto, no official vector exists.
const SECRET = 'shpss_test_secret';
const BODY = '{"id":1}';
const SIG = 'K2XDCjoIIQnsCAW9wJNjHt4VwaiFCMoHAkXVA+JPSq0=';

const verify = (sig: string | string[], secrets = [SECRET], body: string | Buffer = BODY) =>
  scheme.verify(input({ 'x-shopify-hmac-sha256': sig }, body, Date.now()), source({ secrets }));

describe('shopify: derived vector', () => {
  it('matches an independent HMAC and verifies at any clock', () => {
    expect(createHmac('sha256', SECRET).update(BODY).digest('base64')).toBe(SIG);
    expect(verify(SIG)).toBeNull();
    expect(scheme.verify(input({ 'x-shopify-hmac-sha256': SIG }, BODY, 0), source({ secrets: [SECRET] }))).toBeNull();
  });

  it('accepts the signature without its padding (same bytes)', () => {
    expect(verify(SIG.replace(/=+$/, ''))).toBeNull();
  });

  it.each([
    ['a changed body', SIG, '{"id":2}'],
    ['one character changed', SIG.replace('K2X', 'K2Y'), BODY],
    ['a truncated signature', SIG.slice(0, -5), BODY],
    ['non-canonical trailing bits (Buffer.from would decode it to the same bytes)', SIG.replace('Sq0=', 'Sq1='), BODY],
    ['stray characters', SIG.replace('K2X', 'K2X!'), BODY],
    ['the hex form', Buffer.from(SIG, 'base64').toString('hex'), BODY],
    ['an empty-ish value', '=', BODY],
  ])('refuses %s', (_name, sig, body) => {
    expect(verify(sig, [SECRET], body)).toBe('invalid_signature');
  });

  it('is missing_signature without the header', () => {
    expect(scheme.verify(input({}, BODY), source({ secrets: [SECRET] }))).toBe('missing_signature');
    expect(verify([' '])).toBe('missing_signature');
  });

  it('tries every secret and every value of a repeated header', () => {
    expect(verify(SIG, ['old', SECRET])).toBeNull();
    expect(verify(SIG, ['old'])).toBe('invalid_signature');
    const bad = createHmac('sha256', 'other').update(BODY).digest('base64');
    expect(verify([bad, SIG])).toBeNull();
    expect(verify(`${bad}, ${SIG}`)).toBeNull();
    expect(verify([bad])).toBe('invalid_signature');
  });
});

describe('shopify: identify', () => {
  const src = source({ secrets: [SECRET] });
  it('uses X-Shopify-Event-Id, else X-Shopify-Webhook-Id, else a body hash', () => {
    const all = { 'x-shopify-event-id': 'ev-1', 'x-shopify-webhook-id': 'wh-1', 'x-shopify-topic': 'orders/create' };
    expect(scheme.identify(input(all, BODY), { id: 1 }, src)).toEqual({
      deliveryId: 'ev-1',
      eventType: 'orders/create',
    });
    expect(scheme.identify(input({ 'x-shopify-webhook-id': 'wh-1' }, BODY), undefined, src)).toEqual({
      deliveryId: 'wh-1',
      eventType: undefined,
    });
    expect(scheme.identify(input({}, BODY), undefined, src).deliveryId).toBe(bodyHash(Buffer.from(BODY)));
  });
});
