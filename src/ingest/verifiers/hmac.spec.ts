import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { SourceConfig } from '../../config/app-config.js';
import { hmacScheme as scheme } from './hmac.js';
import { bodyHash, type WebhookInput } from './scheme-helpers.js';

const source = (over: Partial<SourceConfig> = {}): SourceConfig => ({
  name: 'custom',
  verifier: 'hmac',
  secrets: [],
  toleranceMs: 300_000,
  header: 'x-signature',
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
const verify = (sig: string | string[], src: Partial<SourceConfig>, body: string | Buffer) =>
  scheme.verify(input({ 'x-signature': sig }, body), source(src));

describe('hmac: vectors through the generic scheme', () => {
  it('verifies the GitHub vector as sha256 hex with prefix "sha256="', () => {
    const src = { secrets: ["It's a Secret to Everybody"], prefix: 'sha256=' };
    const sig = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';
    expect(verify(sig, src, 'Hello, World!')).toBeNull();
    expect(verify(sig, src, 'Hello, World?')).toBe('invalid_signature');
    // The prefix must be present; a bare hex or another prefix is refused.
    expect(verify(sig.slice(7), src, 'Hello, World!')).toBe('invalid_signature');
    expect(verify(sig.replace('sha256=', 'SHA256='), src, 'Hello, World!')).toBe('invalid_signature');
    // Without a configured prefix, the prefixed form is not hex.
    expect(verify(sig, { secrets: src.secrets }, 'Hello, World!')).toBe('invalid_signature');
    expect(verify(sig.slice(7), { secrets: src.secrets }, 'Hello, World!')).toBeNull();
  });

  it.each([
    ['', 'f7f9bd47fb987337b5796fdc1fdb9ba221d0d5396814bfcaf9521f43fd8927fd'],
    ['{"obj1":"hello","obj2":"world"}', 'bebb1a643997f419b315ddba19e6f5411e1ce7f810ba6d3617ce72823092f363'],
    ['😀', '837da296d05c4fe31f61d5d7ead035099d9585a5bcde87de952012a78f0b0c43'],
  ])("verifies stripe-node's raw HMAC vector for %p", (body, sig) => {
    expect(verify(sig, { secrets: ['test_secret'] }, body)).toBeNull();
    expect(verify(sig, { secrets: ['test_secreT'] }, body)).toBe('invalid_signature');
  });

  it('verifies the Shopify vector as sha256 base64', () => {
    const src = { secrets: ['shpss_test_secret'], encoding: 'base64' as const };
    expect(verify('K2XDCjoIIQnsCAW9wJNjHt4VwaiFCMoHAkXVA+JPSq0=', src, '{"id":1}')).toBeNull();
    expect(verify('K2XDCjoIIQnsCAW9wJNjHt4VwaiFCMoHAkXVA+JPSq0=', src, '{"id":2}')).toBe('invalid_signature');
    // Configured base64: the hex form of the same MAC is not accepted.
    const hex = Buffer.from('K2XDCjoIIQnsCAW9wJNjHt4VwaiFCMoHAkXVA+JPSq0=', 'base64').toString('hex');
    expect(verify(hex, src, '{"id":1}')).toBe('invalid_signature');
  });
});

describe('hmac: algorithms and encodings', () => {
  const body = '{"kind":"x"}';
  it.each([
    ['sha1', 'hex'],
    ['sha1', 'base64'],
    ['sha256', 'hex'],
    ['sha256', 'base64'],
    ['sha512', 'hex'],
    ['sha512', 'base64'],
  ] as const)('%s / %s', (algorithm, encoding) => {
    const sig = createHmac(algorithm, 'k').update(body).digest(encoding);
    expect(verify(sig, { secrets: ['k'], algorithm, encoding }, body)).toBeNull();
    expect(verify(sig, { secrets: ['k'], algorithm, encoding }, body + ' ')).toBe('invalid_signature');
    // A MAC of another algorithm never passes.
    const other = algorithm === 'sha256' ? 'sha512' : 'sha256';
    expect(
      verify(createHmac(other, 'k').update(body).digest(encoding), { secrets: ['k'], algorithm, encoding }, body),
    ).toBe('invalid_signature');
  });

  it('compares hex case-insensitively', () => {
    const sig = createHmac('sha256', 'k').update(body).digest('hex').toUpperCase();
    expect(verify(sig, { secrets: ['k'] }, body)).toBeNull();
    expect(verify('sha256=' + sig, { secrets: ['k'], prefix: 'sha256=' }, body)).toBeNull();
  });
});

describe('hmac: headers and secrets', () => {
  const body = 'payload';
  const good = createHmac('sha256', 'new').update(body).digest('hex');
  const bad = createHmac('sha256', 'other').update(body).digest('hex');

  it('is missing_signature without the configured header, or with no header configured', () => {
    expect(scheme.verify(input({ 'x-other': good }, body), source({ secrets: ['new'] }))).toBe('missing_signature');
    expect(scheme.verify(input({ 'x-signature': good }, body), source({ secrets: ['new'], header: undefined }))).toBe(
      'missing_signature',
    );
  });

  it('reads the configured header whatever its case in the config', () => {
    expect(
      scheme.verify(input({ 'x-signature': good }, body), source({ secrets: ['new'], header: 'X-Signature' })),
    ).toBeNull();
  });

  it('tries every secret and every signature value', () => {
    expect(verify(good, { secrets: ['old', 'new'] }, body)).toBeNull();
    expect(verify(good, { secrets: ['old'] }, body)).toBe('invalid_signature');
    expect(verify([bad, good], { secrets: ['new'] }, body)).toBeNull();
    expect(verify(`${bad}, ${good}`, { secrets: ['new'] }, body)).toBeNull();
    expect(verify(`${bad},${good}`, { secrets: ['new'] }, body)).toBeNull();
    expect(verify([bad, bad], { secrets: ['new'] }, body)).toBe('invalid_signature');
  });

  it('ignores the clock: nothing is timestamped', () => {
    expect(scheme.verify(input({ 'x-signature': good }, body, 8.64e15), source({ secrets: ['new'] }))).toBeNull();
  });
});

describe('hmac: identify', () => {
  const body = '{"data":{"kind":"order.created"}}';
  const json = JSON.parse(body) as unknown;
  it('uses the configured id header, else a body hash', () => {
    const src = source({ idHeader: 'x-delivery' });
    expect(scheme.identify(input({ 'x-delivery': 'd-1' }, body), json, src).deliveryId).toBe('d-1');
    expect(scheme.identify(input({}, body), json, src).deliveryId).toBe(bodyHash(Buffer.from(body)));
    // Not configured: a header of that name is not used.
    expect(scheme.identify(input({ 'x-delivery': 'd-1' }, body), json, source()).deliveryId).toBe(
      bodyHash(Buffer.from(body)),
    );
  });

  it('reads the type at the dotted typeField path when it is a string', () => {
    expect(scheme.identify(input({}, body), json, source({ typeField: 'data.kind' })).eventType).toBe('order.created');
    expect(scheme.identify(input({}, body), json, source({ typeField: 'data' })).eventType).toBeUndefined();
    expect(scheme.identify(input({}, body), json, source({ typeField: 'data.missing' })).eventType).toBeUndefined();
    expect(scheme.identify(input({}, body), { t: 5 }, source({ typeField: 't' })).eventType).toBeUndefined();
    expect(scheme.identify(input({}, body), json, source()).eventType).toBeUndefined();
    expect(
      scheme.identify(input({}, 'not json'), undefined, source({ typeField: 'data.kind' })).eventType,
    ).toBeUndefined();
  });
});

describe('hmac: a configured header named like an Object member', () => {
  it('treats it as absent when the request does not carry it (found by the fuzz test, seed 215725537)', () => {
    for (const header of ['constructor', 'tostring', '__proto__', 'hasownproperty']) {
      expect(scheme.verify(input({}, ''), source({ header, secrets: ['0123456789abcdef'] }))).toBe('missing_signature');
    }
  });
});
