import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import Stripe from 'stripe';
import type { SourceConfig } from '../../config/app-config.js';
import { parseStripeHeader, stripeScheme as scheme } from './stripe.js';
import { bodyHash, hmac, type WebhookInput } from './scheme-helpers.js';

const source = (over: Partial<SourceConfig> = {}): SourceConfig => ({
  name: 'stripe',
  verifier: 'stripe',
  secrets: [],
  toleranceMs: 300_000,
  algorithm: 'sha256',
  encoding: 'hex',
  prefix: '',
  defaultType: 'webhook',
  ...over,
});
const input = (headers: Record<string, string | string[]>, body: string | Buffer, nowMs: number): WebhookInput => ({
  headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v : [v]])),
  body: typeof body === 'string' ? Buffer.from(body, 'utf8') : body,
  nowMs,
});

// Derived vector, produced with stripe-node's own test helper.
const SECRET = 'whsec_test_secret';
const TS = 1614265330;
const PAYLOAD = '{"id":"evt_test_webhook","object":"event"}';
const V1 = '3c5817089d739023dd6190f70a3757e04f7a2fd8b5dab12c2e000f51970dccff';
const HEADER = `t=${TS},v1=${V1}`;
const AT = TS * 1000 + 10_000;

const stripe = new Stripe('sk_test_x');
const verify = (header: string | string[], nowMs = AT, secrets = [SECRET], body: string | Buffer = PAYLOAD) =>
  scheme.verify(input({ 'stripe-signature': header }, body, nowMs), source({ secrets }));
/** Independent signer (the secret string is the UTF-8 key). */
const v1 = (secret: string, t: string, body: string) =>
  createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');

describe('stripe: derived vector', () => {
  it('stripe-node generates exactly this header, and a manual HMAC agrees', () => {
    expect(stripe.webhooks.generateTestHeaderString({ payload: PAYLOAD, secret: SECRET, timestamp: TS })).toBe(HEADER);
    expect(v1(SECRET, String(TS), PAYLOAD)).toBe(V1);
  });

  it('is refused as stale at the real current clock and accepted with the clock injected', () => {
    expect(verify(HEADER, Date.now())).toBe('timestamp_out_of_tolerance');
    expect(verify(HEADER, AT)).toBeNull();
    expect(verify(HEADER, TS * 1000 + 299_000)).toBeNull();
    expect(verify(HEADER, TS * 1000 + 300_000)).toBeNull();
    expect(verify(HEADER, TS * 1000 - 300_000)).toBeNull();
  });

  it('applies the tolerance both ways, unlike stripe-node which accepts a future-dated t', () => {
    expect(verify(HEADER, TS * 1000 + 301_000)).toBe('timestamp_out_of_tolerance');
    expect(verify(HEADER, TS * 1000 - 301_000)).toBe('timestamp_out_of_tolerance');
    expect(verify(HEADER, TS * 1000 - 3_600_000)).toBe('timestamp_out_of_tolerance');
    // stripe-node: ts+299 s accepted, ts+301 s refused, ts-3600 s accepted (its documented age-only check).
    const construct = (receivedAt: number) => () =>
      stripe.webhooks.constructEvent(PAYLOAD, HEADER, SECRET, 300, undefined, receivedAt);
    expect(construct(TS * 1000 + 299_000)().id).toBe('evt_test_webhook');
    expect(construct(TS * 1000 + 301_000)).toThrow(/tolerance/);
    expect(construct(TS * 1000 - 3_600_000)().id).toBe('evt_test_webhook');
  });

  it('uses the whsec_ secret as a raw UTF-8 key, not base64-decoded', () => {
    const decodedKey = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
    const wrong = createHmac('sha256', decodedKey).update(`${TS}.${PAYLOAD}`).digest('hex');
    expect(verify(`t=${TS},v1=${wrong}`)).toBe('invalid_signature');
  });

  it.each([
    ['a changed body', HEADER, '{"id":"evt_test_webhook","object":"evenT"}'],
    ['a changed t', `t=${TS + 1},v1=${V1}`, PAYLOAD],
    ['a truncated signature', HEADER.slice(0, -2), PAYLOAD],
    ['a signature with one digit changed', HEADER.replace('v1=3c58', 'v1=3c59'), PAYLOAD],
    ['only a v0 signature', `t=${TS},v0=${V1}`, PAYLOAD],
    ['no t', `v1=${V1}`, PAYLOAD],
    ['no v1', `t=${TS}`, PAYLOAD],
    ['garbage', 'garbage', PAYLOAD],
    ['an odd-length hex', `t=${TS},v1=${V1}0`, PAYLOAD],
  ])('refuses %s', (_name, header, body) => {
    expect(verify(header, AT, [SECRET], body)).toBe('invalid_signature');
  });

  it('is missing_signature without the header (or with an empty one)', () => {
    expect(scheme.verify(input({}, PAYLOAD, AT), source({ secrets: [SECRET] }))).toBe('missing_signature');
    expect(verify('')).toBe('missing_signature');
    expect(verify([])).toBe('missing_signature');
  });

  it('tries every v1 signature, ignores v0 and accepts upper-case hex', () => {
    expect(verify(`t=${TS},v1=${'0'.repeat(64)},v1=${V1}`)).toBeNull();
    expect(verify(`t=${TS},v0=${'0'.repeat(64)},v1=${V1},v1=bogus`)).toBeNull();
    expect(verify(`t=${TS}, v1=${V1}`)).toBeNull();
    expect(verify(`t=${TS},v1=${V1.toUpperCase()}`)).toBeNull();
  });

  it('counts every value of a repeated header, also when Node joined them', () => {
    const bad = `t=${TS},v1=${'0'.repeat(64)}`;
    expect(verify([bad, HEADER])).toBeNull();
    expect(verify([HEADER, bad])).toBeNull();
    expect(verify(`${bad}, ${HEADER}`)).toBeNull();
    expect(verify([bad, bad])).toBe('invalid_signature');
    // A v1 paired with another value's t is not tried against it.
    expect(verify([`t=${TS}`, `v1=${V1}`])).toBe('invalid_signature');
  });

  it('checks each signature against its own t: a fresh validly signed group wins over a stale one', () => {
    const now = TS * 1000 + 3_600_000;
    const fresh = `t=${TS + 3600},v1=${v1(SECRET, String(TS + 3600), PAYLOAD)}`;
    expect(verify([HEADER, fresh], now)).toBeNull();
    expect(verify(`${HEADER}, ${fresh}`, now)).toBeNull();
    expect(verify([HEADER, `t=${TS + 3600},v1=${V1}`], now)).toBe('timestamp_out_of_tolerance');
  });

  it('tries every secret (key rotation)', () => {
    expect(verify(HEADER, AT, ['whsec_old', SECRET])).toBeNull();
    expect(verify(HEADER, AT, [SECRET, 'whsec_new'])).toBeNull();
    expect(verify(HEADER, AT, ['whsec_old'])).toBe('invalid_signature');
  });

  it.each(['1e9', '0x6036B1F2', '-1614265330', '', '1614265330.5', '99999999999999999999'])(
    'a validly signed t=%p is timestamp_out_of_tolerance, a badly signed one invalid_signature',
    (t) => {
      expect(verify(`t=${t},v1=${v1(SECRET, t, PAYLOAD)}`, AT)).toBe('timestamp_out_of_tolerance');
      expect(verify(`t=${t},v1=${V1}`, AT)).toBe('invalid_signature');
    },
  );

  it('parses groups of t and v1', () => {
    expect(parseStripeHeader(['v1=aa,t=1,v1=bb,v0=cc', 't=2,v1=zz,v1=dd'])).toEqual([
      { t: '1', v1: [Buffer.from('aa', 'hex'), Buffer.from('bb', 'hex')] },
      { t: '2', v1: [Buffer.from('dd', 'hex')] },
    ]);
  });
});

describe("stripe-node's raw HMAC vectors (secret test_secret, UTF-8 key)", () => {
  it.each([
    ['', 'f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd'],
    ['{"obj1":"hello","obj2":"world"}', 'bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363'],
    // The source writes the payload as the JS literal "😀": the emoji itself, four UTF-8 bytes.
    ['😀', '837da296d05c4fe31f61d5d7ead035099d9585a5bcde87de952012a78f0b0c43'],
  ])('HMAC-SHA256(%p)', (payload, expected) => {
    // The primitive the verifier uses: the secret string as a UTF-8 key, raw bytes of the payload.
    expect(hmac('sha256', Buffer.from('test_secret', 'utf8'), [Buffer.from(payload, 'utf8')]).toString('hex')).toBe(
      expected,
    );
  });
});

describe('stripe: cross-check with stripe-node', () => {
  it('accepts whatever generateTestHeaderString signs, at the signed time', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }),
        // stripe-node treats timestamp 0 as "now", hence min 1.
        fc.integer({ min: 1, max: 4_000_000_000 }),
        fc.string({ maxLength: 200 }),
        (secret, timestamp, payload) => {
          const header = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
          expect(
            scheme.verify(
              input({ 'stripe-signature': header }, payload, timestamp * 1000),
              source({ secrets: [secret] }),
            ),
          ).toBeNull();
          expect(
            scheme.verify(
              input({ 'stripe-signature': header }, payload + ' ', timestamp * 1000),
              source({ secrets: [secret] }),
            ),
          ).toBe('invalid_signature');
        },
      ),
    );
  });

  it('stripe-node accepts what we sign independently', () => {
    const t = Math.floor(Date.now() / 1000);
    const header = `t=${t},v1=${v1(SECRET, String(t), PAYLOAD)}`;
    expect(stripe.webhooks.constructEvent(PAYLOAD, header, SECRET).id).toBe('evt_test_webhook');
    expect(verify(header, t * 1000)).toBeNull();
  });
});

describe('stripe: identify', () => {
  const src = source({ secrets: [SECRET] });
  const i = input({ 'stripe-signature': HEADER }, PAYLOAD, AT);
  it('uses the body id and type', () => {
    expect(scheme.identify(i, { id: 'evt_1', type: 'invoice.paid' }, src)).toEqual({
      deliveryId: 'evt_1',
      eventType: 'invoice.paid',
    });
  });
  it('falls back to a body hash and no type', () => {
    const hash = bodyHash(Buffer.from(PAYLOAD));
    expect(scheme.identify(i, undefined, src)).toEqual({ deliveryId: hash, eventType: undefined });
    expect(scheme.identify(i, { id: 42, type: null }, src)).toEqual({ deliveryId: hash, eventType: undefined });
    expect(scheme.identify(i, { id: '' }, src).deliveryId).toBe(hash);
  });
});
