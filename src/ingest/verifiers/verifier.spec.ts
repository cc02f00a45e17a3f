import { describe, expect, it } from '@jest/globals';
import type { SourceConfig } from '../../config/app-config.js';
import { githubScheme } from './github.js';
import { hmacScheme } from './hmac.js';
import { shopifyScheme } from './shopify.js';
import { slackScheme } from './slack.js';
import { standardWebhooksScheme } from './standard-webhooks.js';
import { stripeScheme } from './stripe.js';
import {
  bodyHash,
  commaSeparatedValues,
  decodeBase64,
  decodeHex,
  firstHeader,
  headerValues,
  jsonString,
  safeEqual,
  timestampHeader,
  withinTolerance,
  type WebhookInput,
} from './scheme-helpers.js';
import { schemeFor } from './verifier.js';

const input = (headers: Record<string, string[] | undefined>): WebhookInput => ({
  headers,
  body: Buffer.alloc(0),
  nowMs: 0,
});

describe('schemeFor', () => {
  it.each([
    ['standard-webhooks', standardWebhooksScheme],
    ['stripe', stripeScheme],
    ['github', githubScheme],
    ['shopify', shopifyScheme],
    ['slack', slackScheme],
    ['hmac', hmacScheme],
  ] as const)('%s', (name, scheme) => {
    expect(schemeFor(name)).toBe(scheme);
  });
  it('throws on an unknown name (the config refuses it earlier)', () => {
    expect(() => schemeFor('nope' as SourceConfig['verifier'])).toThrow(/unknown verifier/);
  });
});

describe('safeEqual', () => {
  it('compares bytes and never throws on a length mismatch', () => {
    expect(safeEqual(Buffer.from('abc'), Buffer.from('abc'))).toBe(true);
    expect(safeEqual(Buffer.from('abc'), Buffer.from('abd'))).toBe(false);
    expect(safeEqual(Buffer.from('abc'), Buffer.from('ab'))).toBe(false);
    expect(safeEqual(Buffer.alloc(0), Buffer.from('a'))).toBe(false);
    expect(safeEqual(Buffer.alloc(0), Buffer.alloc(0))).toBe(true);
  });
});

describe('decodeHex', () => {
  it('accepts even-length hex of either case, refuses anything else', () => {
    expect(decodeHex('0aFf')).toEqual(Buffer.from([0x0a, 0xff]));
    for (const bad of ['', 'abc', 'zz', '0x00', 'aa ', ' aa', 'aa-bb']) expect(decodeHex(bad)).toBeUndefined();
  });
});

describe('decodeBase64', () => {
  it('accepts canonical standard base64, padded or not', () => {
    expect(decodeBase64('aGVsbG8=')).toEqual(Buffer.from('hello'));
    expect(decodeBase64('aGVsbG8')).toEqual(Buffer.from('hello'));
    expect(decodeBase64('+/+/')).toEqual(Buffer.from([0xfb, 0xff, 0xbf]));
  });
  it('refuses what Buffer.from would silently accept', () => {
    // Non-zero trailing bits, url-safe alphabet, stray characters, wrong padding, inner padding.
    for (const bad of ['aGVsbG9=', '-_-_', 'aGVs bG8=', 'aGVsbG8!', 'aGVsbG8==', 'aGVs=bG8', '=', '', 'a']) {
      expect([bad, decodeBase64(bad)]).toEqual([bad, undefined]);
    }
  });
});

describe('withinTolerance', () => {
  const now = 1_614_265_330_000;
  it('applies |now - ts| <= tolerance both ways', () => {
    expect(withinTolerance('1614265330', now, 300_000)).toBe(true);
    expect(withinTolerance('1614265630', now, 300_000)).toBe(true);
    expect(withinTolerance('1614265030', now, 300_000)).toBe(true);
    expect(withinTolerance('1614265631', now, 300_000)).toBe(false);
    expect(withinTolerance('1614265029', now, 300_000)).toBe(false);
    expect(withinTolerance('1614265330', now + 1, 0)).toBe(false);
  });
  it.each([
    '1e9',
    '0x6036B1F2',
    '-1614265330',
    '',
    ' 1614265330',
    '1614265330.0',
    '+1614265330',
    '9007199254740993',
    '1'.repeat(400),
    'NaN',
    'Infinity',
  ])('refuses %p', (ts) => {
    expect(withinTolerance(ts, now, 300_000)).toBe(false);
    expect(withinTolerance(ts, Number(ts) * 1000 || now, Number.MAX_SAFE_INTEGER)).toBe(false);
  });
  it('falls back to 5 minutes when the tolerance is not a usable number', () => {
    expect(withinTolerance('1614265330', now + 300_000, Number.NaN)).toBe(true);
    expect(withinTolerance('1614265330', now + 300_001, Number.NaN)).toBe(false);
  });
});

describe('header lookup', () => {
  const i = input({ 'x-a': [' one ', '', 'two, three'], 'x-empty': [' '], 'x-ts': ['123, 456'] });
  it('headerValues keeps every non-empty trimmed value in order', () => {
    expect(headerValues(i, 'X-A')).toEqual(['one', 'two, three']);
    expect(headerValues(i, 'x-empty')).toEqual([]);
    expect(headerValues(i, 'x-missing')).toEqual([]);
  });
  it('commaSeparatedValues also splits comma-joined values', () => {
    expect(commaSeparatedValues(i, 'x-a')).toEqual(['one', 'two', 'three']);
  });
  it('firstHeader keeps the first value whole; timestampHeader its first comma part', () => {
    expect(firstHeader(i, 'x-a')).toBe('one');
    expect(firstHeader(i, 'x-empty')).toBeUndefined();
    expect(timestampHeader(i, 'x-ts')).toBe('123');
    expect(timestampHeader(i, 'x-missing')).toBeUndefined();
  });
});

describe('jsonString', () => {
  const json = { a: { b: 'deep', n: 1, e: '' }, s: 'top', arr: ['x'] };
  it('follows a dotted path to a non-empty string', () => {
    expect(jsonString(json, 's')).toBe('top');
    expect(jsonString(json, 'a.b')).toBe('deep');
    expect(jsonString(json, 'a.n')).toBeUndefined();
    expect(jsonString(json, 'a.e')).toBeUndefined();
    expect(jsonString(json, 'a')).toBeUndefined();
    expect(jsonString(json, 'a.b.c')).toBeUndefined();
    expect(jsonString(json, 'arr.0')).toBeUndefined();
    expect(jsonString(undefined, 's')).toBeUndefined();
    expect(jsonString('str', 'length')).toBeUndefined();
  });
  it('never reads inherited properties', () => {
    expect(jsonString({}, 'constructor.name')).toBeUndefined();
    expect(jsonString({}, '__proto__')).toBeUndefined();
  });
});

describe('bodyHash', () => {
  it('is the sha256 hex of the raw bytes', () => {
    expect(bodyHash(Buffer.alloc(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});
