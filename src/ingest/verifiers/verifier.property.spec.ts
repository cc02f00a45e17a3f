/**
 * Properties over every scheme, with independent signers (node:crypto, not the code under test):
 * sign-then-verify is accepted; flipping any single byte of the body or of the signature (the MAC bytes,
 * re-encoded in the scheme's format) is refused; a clock outside the tolerance is refused after the
 * signature check.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { SourceConfig } from '../../config/app-config.js';
import { schemeFor, type WebhookInput } from './verifier.js';

type Headers = Record<string, string[]>;
interface Signed {
  secret: string;
  body: Buffer;
  id: string;
  ts: number;
  source: SourceConfig;
}
interface Case {
  verifier: SourceConfig['verifier'];
  timestamped: boolean;
  secret: fc.Arbitrary<string>;
  /** hmac: a random header/algorithm/encoding/prefix configuration. */
  config: fc.Arbitrary<Partial<SourceConfig>>;
  /** Signs; `tamper` edits the MAC bytes before they are encoded. */
  sign(s: Signed, tamper: (mac: Buffer) => Buffer): Headers;
}

const mac = (alg: 'sha1' | 'sha256' | 'sha512', key: Buffer | string, ...parts: (string | Buffer)[]) => {
  const h = createHmac(alg, key);
  for (const p of parts) h.update(p);
  return h.digest();
};
const textSecret = fc.string({ unit: 'binary', minLength: 1, maxLength: 64 });

const cases: Case[] = [
  {
    verifier: 'standard-webhooks',
    timestamped: true,
    secret: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => 'whsec_' + Buffer.from(b).toString('base64')),
    config: fc.constant({}),
    sign: ({ secret, body, id, ts }, tamper) => ({
      'webhook-id': [id],
      'webhook-timestamp': [String(ts)],
      'webhook-signature': [
        'v1,' + tamper(mac('sha256', Buffer.from(secret.slice(6), 'base64'), `${id}.${ts}.`, body)).toString('base64'),
      ],
    }),
  },
  {
    verifier: 'stripe',
    timestamped: true,
    secret: textSecret,
    config: fc.constant({}),
    sign: ({ secret, body, ts }, tamper) => ({
      'stripe-signature': [`t=${ts},v1=${tamper(mac('sha256', secret, `${ts}.`, body)).toString('hex')}`],
    }),
  },
  {
    verifier: 'github',
    timestamped: false,
    secret: textSecret,
    config: fc.constant({}),
    sign: ({ secret, body }, tamper) => ({
      'x-hub-signature-256': ['sha256=' + tamper(mac('sha256', secret, body)).toString('hex')],
    }),
  },
  {
    verifier: 'shopify',
    timestamped: false,
    secret: textSecret,
    config: fc.constant({}),
    sign: ({ secret, body }, tamper) => ({
      'x-shopify-hmac-sha256': [tamper(mac('sha256', secret, body)).toString('base64')],
    }),
  },
  {
    verifier: 'slack',
    timestamped: true,
    secret: textSecret,
    config: fc.constant({}),
    sign: ({ secret, body, ts }, tamper) => ({
      'x-slack-request-timestamp': [String(ts)],
      'x-slack-signature': ['v0=' + tamper(mac('sha256', secret, `v0:${ts}:`, body)).toString('hex')],
    }),
  },
  {
    verifier: 'hmac',
    timestamped: false,
    secret: textSecret,
    config: fc.record({
      header: fc.constantFrom('x-signature', 'x-hook-sig'),
      algorithm: fc.constantFrom('sha1' as const, 'sha256' as const, 'sha512' as const),
      encoding: fc.constantFrom('hex' as const, 'base64' as const),
      prefix: fc.constantFrom('', 'sha256=', 'v0='),
    }),
    sign: ({ secret, body, source }, tamper) => ({
      [source.header!]: [source.prefix + tamper(mac(source.algorithm, secret, body)).toString(source.encoding)],
    }),
  },
];

const TOLERANCE = 300_000;
const makeSource = (
  verifier: SourceConfig['verifier'],
  secrets: string[],
  over: Partial<SourceConfig>,
): SourceConfig => ({
  name: 'src',
  verifier,
  secrets,
  toleranceMs: TOLERANCE,
  algorithm: 'sha256',
  encoding: 'hex',
  prefix: '',
  defaultType: 'webhook',
  ...over,
});

const flip = (buf: Buffer, index: number, mask: number): Buffer => {
  const out = Buffer.from(buf);
  out[index % out.length] ^= mask;
  return out;
};
const same = (m: Buffer) => m;

describe.each(cases)('property: $verifier', (c) => {
  const scheme = schemeFor(c.verifier);
  const arbitraries = {
    secret: c.secret,
    // Key rotation: the signing secret sits among others at a random position.
    others: fc.array(c.secret, { maxLength: 2 }),
    position: fc.nat(),
    config: c.config,
    body: fc.uint8Array({ minLength: 1, maxLength: 512 }).map((b) => Buffer.from(b)),
    id: fc.stringMatching(/^[!-~]{1,48}$/),
    ts: fc.integer({ min: 0, max: 2 ** 33 }),
    skewMs: fc.integer({ min: -TOLERANCE, max: TOLERANCE }),
    index: fc.nat(),
    mask: fc.integer({ min: 1, max: 255 }),
  };
  const setup = (v: {
    secret: string;
    others: string[];
    position: number;
    config: Partial<SourceConfig>;
    body: Buffer;
    id: string;
    ts: number;
  }) => {
    const secrets = [...v.others];
    secrets.splice(v.position % (secrets.length + 1), 0, v.secret);
    const source = makeSource(c.verifier, secrets, v.config);
    const signed: Signed = { secret: v.secret, body: v.body, id: v.id, ts: v.ts, source };
    return { source, signed };
  };
  const run = (headers: Headers, body: Buffer, nowMs: number, source: SourceConfig) =>
    scheme.verify({ headers, body, nowMs } satisfies WebhookInput, source);

  it('sign-then-verify is accepted (clock anywhere within the tolerance)', () => {
    fc.assert(
      fc.property(fc.record(arbitraries), (v) => {
        const { source, signed } = setup(v);
        const now = v.ts * 1000 + (c.timestamped ? v.skewMs : 0);
        expect(run(c.sign(signed, same), v.body, now, source)).toBeNull();
      }),
    );
  });

  it('flipping any single byte of the body is refused', () => {
    fc.assert(
      fc.property(fc.record(arbitraries), (v) => {
        const { source, signed } = setup(v);
        const tampered = flip(v.body, v.index, v.mask);
        expect(run(c.sign(signed, same), tampered, v.ts * 1000, source)).toBe('invalid_signature');
      }),
    );
  });

  it('flipping any single byte of the signature is refused', () => {
    fc.assert(
      fc.property(fc.record(arbitraries), (v) => {
        const { source, signed } = setup(v);
        const headers = c.sign(signed, (m) => flip(m, v.index, v.mask));
        expect(run(headers, v.body, v.ts * 1000, source)).toBe('invalid_signature');
      }),
    );
  });

  if (c.timestamped) {
    it('a validly signed request outside the tolerance is timestamp_out_of_tolerance, either way', () => {
      fc.assert(
        fc.property(
          fc.record(arbitraries),
          fc.integer({ min: TOLERANCE + 1, max: 10 * 365 * 86_400_000 }),
          fc.boolean(),
          (v, off, ahead) => {
            const { source, signed } = setup(v);
            const now = v.ts * 1000 + (ahead ? off : -off);
            expect(run(c.sign(signed, same), v.body, now, source)).toBe('timestamp_out_of_tolerance');
          },
        ),
      );
    });
  }
});
