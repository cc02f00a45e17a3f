/**
 * Fuzz properties over every verifier with hostile input (the signing round-trips live in
 * verifier.property.spec.ts): whatever the headers, the body, the clock or the source's configuration, `verify`
 * and `identify` never throw, `verify` answers one of the documented codes, unsigned junk is never accepted, and
 * `identify` always yields a usable delivery id.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { SourceConfig } from '../../config/app-config.js';
import { VERIFIERS } from '../../config/config.dto.js';
import { schemeFor, type WebhookInput } from './verifier.js';

const SCHEME_HEADERS = [
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'stripe-signature',
  'x-hub-signature-256',
  'x-github-event',
  'x-github-hook-id',
  'x-github-delivery',
  'x-shopify-hmac-sha256',
  'x-shopify-topic',
  'x-shopify-event-id',
  'x-shopify-webhook-id',
  'x-slack-signature',
  'x-slack-request-timestamp',
  'x-signature',
  'x-delivery',
];

// Values that look almost right (scheme prefixes, separators, numbers at the edges) mixed with arbitrary ones.
const fragment = fc.oneof(
  fc.constantFrom('v1,', 'v1a,', 'v0=', 't=', ',v1=', 'sha256=', 'sha1=', ' ', ',', '=', '==', '.', 'whsec_', '\t', ''),
  fc.constantFrom(
    '0',
    '-1',
    '1e9',
    '0x10',
    '99999999999999999999999',
    'NaN',
    'Infinity',
    String(Math.floor(Date.now() / 1000)),
  ),
  fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b).toString('base64')),
  fc.uint8Array({ maxLength: 48 }).map((b) => Buffer.from(b).toString('hex')),
  fc.string({ unit: 'binary', maxLength: 40 }),
);
const headerValue = fc.array(fragment, { maxLength: 6 }).map((parts) => parts.join(''));
const headerName = fc.oneof(fc.constantFrom(...SCHEME_HEADERS), fc.stringMatching(/^[a-z0-9-]{1,20}$/));
const headers = fc.dictionary(headerName, fc.option(fc.array(headerValue, { maxLength: 5 }), { nil: undefined }), {
  maxKeys: 12,
});

const body = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s)),
);

const json = fc.oneof(fc.constant(undefined), fc.jsonValue(), fc.anything(), fc.constant({ __proto__: { type: 'x' } }));

const source: fc.Arbitrary<SourceConfig> = fc.record({
  name: fc.constant('fuzz'),
  verifier: fc.constantFrom(...VERIFIERS),
  secrets: fc.array(
    fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
      fc.string().map((s) => `whsec_${s}`),
    ),
    {
      minLength: 1,
      maxLength: 3,
    },
  ),
  toleranceMs: fc.oneof(fc.nat(), fc.constant(300_000)),
  header: fc.option(fc.oneof(fc.constantFrom(...SCHEME_HEADERS), fc.stringMatching(/^[a-z0-9-]{1,20}$/)), {
    nil: undefined,
  }),
  algorithm: fc.constantFrom('sha256' as const, 'sha1' as const, 'sha512' as const),
  encoding: fc.constantFrom('hex' as const, 'base64' as const),
  prefix: fc.oneof(fc.constantFrom('', 'sha256=', 'v0='), fc.string({ maxLength: 8 })),
  idHeader: fc.option(fc.constantFrom(...SCHEME_HEADERS), { nil: undefined }),
  typeField: fc.option(
    fc.oneof(fc.constantFrom('type', 'event.type', '__proto__', 'constructor.prototype', 'a..b', ''), fc.string()),
    {
      nil: undefined,
    },
  ),
  defaultType: fc.constant('webhook'),
});

const nowMs = fc.oneof(fc.constant(Date.now()), fc.integer({ min: -(2 ** 45), max: 2 ** 45 }), fc.maxSafeInteger());

const CODES = [null, 'missing_signature', 'invalid_signature', 'timestamp_out_of_tolerance'];

describe('verifiers under hostile input (fuzz)', () => {
  it('verify never throws, answers a documented code, and never accepts unsigned junk (property)', () => {
    fc.assert(
      fc.property(source, headers, body, nowMs, (src, h, b, now) => {
        const input: WebhookInput = { headers: h, body: b, nowMs: now };
        const answer = schemeFor(src.verifier).verify(input, src);
        expect(CODES).toContain(answer);
        // Random bytes forging an HMAC under a random secret: if this ever holds, verification is broken.
        expect(answer).not.toBeNull();
      }),
      { numRuns: 3000 },
    );
  });

  it('identify never throws and yields a non-empty delivery id and a string-or-absent type (property)', () => {
    fc.assert(
      fc.property(source, headers, body, nowMs, json, (src, h, b, now, j) => {
        const id = schemeFor(src.verifier).identify({ headers: h, body: b, nowMs: now }, j, src);
        expect(typeof id.deliveryId).toBe('string');
        expect(id.deliveryId.length).toBeGreaterThan(0);
        if (id.eventType !== undefined) expect(typeof id.eventType).toBe('string');
      }),
      { numRuns: 3000 },
    );
  });

  it('a header repeated many times (as Node hands it over) stays cheap and never throws', () => {
    const many = Array.from({ length: 5000 }, (_, i) => `v1,${Buffer.alloc(32, i).toString('base64')}`);
    for (const verifier of VERIFIERS) {
      const src: SourceConfig = {
        name: 'fuzz',
        verifier,
        secrets: ['whsec_c2VjcmV0', 'another'],
        toleranceMs: 300_000,
        header: 'x-signature',
        algorithm: 'sha256',
        encoding: 'base64',
        prefix: '',
        defaultType: 'webhook',
      };
      const h: Record<string, string[]> = {};
      for (const name of [...SCHEME_HEADERS]) h[name] = many;
      h['webhook-timestamp'] = [String(Math.floor(Date.now() / 1000))];
      h['x-slack-request-timestamp'] = [String(Math.floor(Date.now() / 1000))];
      expect(schemeFor(verifier).verify({ headers: h, body: Buffer.from('{}'), nowMs: Date.now() }, src)).toBe(
        'invalid_signature',
      );
    }
  });
});
