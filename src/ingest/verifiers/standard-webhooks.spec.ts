import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import type { SourceConfig } from '../../config/app-config.js';
import { standardWebhooksKey, standardWebhooksScheme as scheme } from './standard-webhooks.js';
import { bodyHash, type WebhookInput } from './scheme-helpers.js';

const source = (over: Partial<SourceConfig> = {}): SourceConfig => ({
  name: 'acme',
  verifier: 'standard-webhooks',
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

// Official vector (standard-webhooks and svix reference libraries).
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TS = 1614265330;
const PAYLOAD = '{"test": 2432232314}';
const SIG = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';
// The spec's v1a (ed25519) signature over the same message (§3.2): not a v1 entry, so ignored.
const V1A = 'v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==';
const AT = TS * 1000 + 10_000;

const vectorHeaders = (signature: string | string[] = SIG) => ({
  'webhook-id': ID,
  'webhook-timestamp': String(TS),
  'webhook-signature': signature,
});
const verifyVector = (signature: string | string[], nowMs = AT, secrets = [SECRET]) =>
  scheme.verify(input(vectorHeaders(signature), PAYLOAD, nowMs), source({ secrets }));

/** Signs like the spec, independently of the implementation (for timestamps the library cannot express). */
const signRaw = (secret: string, id: string, ts: string, body: string | Buffer) =>
  'v1,' +
  createHmac('sha256', Buffer.from(secret.replace(/^whsec_/, ''), 'base64'))
    .update(`${id}.${ts}.`)
    .update(body)
    .digest('base64');

describe('standard-webhooks: official vector', () => {
  it('the secret decodes to 24 bytes and the library agrees on the signature', () => {
    expect(standardWebhooksKey(SECRET)).toHaveLength(24);
    expect(new Webhook(SECRET).sign(ID, new Date(TS * 1000), PAYLOAD)).toBe(SIG);
    expect(signRaw(SECRET, ID, String(TS), PAYLOAD)).toBe(SIG);
  });

  it('is refused as stale at the real current clock', () => {
    expect(verifyVector(SIG, Date.now())).toBe('timestamp_out_of_tolerance');
  });

  it('is accepted with the clock injected at its timestamp (+10 s) and at both edges of the window', () => {
    expect(verifyVector(SIG, AT)).toBeNull();
    expect(verifyVector(SIG, TS * 1000)).toBeNull();
    expect(verifyVector(SIG, TS * 1000 + 300_000)).toBeNull();
    expect(verifyVector(SIG, TS * 1000 - 300_000)).toBeNull();
  });

  it('is refused at ts+301 s (too old) and ts-301 s (too new)', () => {
    expect(verifyVector(SIG, TS * 1000 + 301_000)).toBe('timestamp_out_of_tolerance');
    expect(verifyVector(SIG, TS * 1000 - 301_000)).toBe('timestamp_out_of_tolerance');
  });

  it('honours source.toleranceMs', () => {
    const src = source({ secrets: [SECRET], toleranceMs: 5_000 });
    expect(scheme.verify(input(vectorHeaders(), PAYLOAD, TS * 1000 + 5_000), src)).toBeNull();
    expect(scheme.verify(input(vectorHeaders(), PAYLOAD, TS * 1000 + 5_001), src)).toBe('timestamp_out_of_tolerance');
  });

  it.each([
    ['an invalid signature', 'v1,dawfeoifkpqwoekfpqoekf'],
    ['a truncated signature', SIG.slice(0, -3)],
    ['"v1," alone', 'v1,'],
    ['a v2 entry (ignored)', SIG.replace('v1,', 'v2,')],
    ['a v1a entry (ignored)', V1A],
    ['no version', SIG.slice(3)],
    ['the signature with one character changed', SIG.replace('g0hM', 'g0hN')],
  ])('refuses %s', (_name, signature) => {
    expect(verifyVector(signature)).toBe('invalid_signature');
  });

  it('accepts a secret given without whsec_', () => {
    expect(verifyVector(SIG, AT, [SECRET.slice('whsec_'.length)])).toBeNull();
  });

  it('tries every signature: "v1,bogus v1,<good>" and ignored other versions', () => {
    expect(verifyVector(`v1,bogus ${SIG}`)).toBeNull();
    expect(verifyVector(`${SIG.replace('v1,', 'v2,')} ${V1A} ${SIG}`)).toBeNull();
    expect(verifyVector(`v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ${SIG} v1,bogus`)).toBeNull();
  });

  it('counts every value of a repeated signature header, also when Node joined them with a comma', () => {
    expect(verifyVector(['v1,bogus', SIG])).toBeNull();
    expect(verifyVector([SIG, 'v1,bogus'])).toBeNull();
    expect(verifyVector(`v1,bogus, ${SIG}`)).toBeNull();
    expect(verifyVector(['v1,bogus', 'v1,dawfeoifkpqwoekfpqoekf'])).toBe('invalid_signature');
  });

  it('tries every secret (key rotation)', () => {
    const other = 'whsec_' + randomBytes(24).toString('base64');
    expect(verifyVector(SIG, AT, [other, SECRET])).toBeNull();
    expect(verifyVector(SIG, AT, [SECRET, other])).toBeNull();
    expect(verifyVector(SIG, AT, [other])).toBe('invalid_signature');
    expect(verifyVector(SIG, AT, [])).toBe('invalid_signature');
  });

  it('refuses a changed body, id or timestamp', () => {
    const src = source({ secrets: [SECRET] });
    expect(scheme.verify(input(vectorHeaders(), '{"test": 2432232315}', AT), src)).toBe('invalid_signature');
    expect(scheme.verify(input({ ...vectorHeaders(), 'webhook-id': ID + 'x' }, PAYLOAD, AT), src)).toBe(
      'invalid_signature',
    );
    expect(scheme.verify(input({ ...vectorHeaders(), 'webhook-timestamp': String(TS + 1) }, PAYLOAD, AT), src)).toBe(
      'invalid_signature',
    );
  });

  it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])('is missing_signature without %s', (name) => {
    const headers: Record<string, string> = vectorHeaders() as Record<string, string>;
    delete headers[name];
    expect(scheme.verify(input(headers, PAYLOAD, AT), source({ secrets: [SECRET] }))).toBe('missing_signature');
    expect(scheme.verify(input({ ...headers, [name]: '  ' }, PAYLOAD, AT), source({ secrets: [SECRET] }))).toBe(
      'missing_signature',
    );
  });

  it('checks the signature before the timestamp: a bad signature on a stale message is invalid_signature', () => {
    expect(verifyVector('v1,dawfeoifkpqwoekfpqoekf', Date.now())).toBe('invalid_signature');
  });

  it('accepts the svix-* headers as fallbacks', () => {
    const headers = { 'svix-id': ID, 'svix-timestamp': String(TS), 'svix-signature': SIG };
    expect(scheme.verify(input(headers, PAYLOAD, AT), source({ secrets: [SECRET] }))).toBeNull();
    expect(scheme.verify(input(headers, PAYLOAD, Date.now()), source({ secrets: [SECRET] }))).toBe(
      'timestamp_out_of_tolerance',
    );
  });
});

describe('standard-webhooks: timestamp format', () => {
  it.each(['1e9', '0x6036B1F2', '-1614265330', '1614265330.0', '+1614265330', '99999999999999999999', 'abc'])(
    'a validly signed %s is timestamp_out_of_tolerance, a badly signed one invalid_signature',
    (ts) => {
      const src = source({ secrets: [SECRET] });
      const good = { 'webhook-id': ID, 'webhook-timestamp': ts, 'webhook-signature': signRaw(SECRET, ID, ts, PAYLOAD) };
      // Clocks where the numeric reading (if any) of the string would be in tolerance.
      for (const now of [AT, 1e9 * 1000, Date.now()]) {
        expect(scheme.verify(input(good, PAYLOAD, now), src)).toBe('timestamp_out_of_tolerance');
      }
      const bad = { ...good, 'webhook-signature': SIG };
      expect(scheme.verify(input(bad, PAYLOAD, AT), src)).toBe('invalid_signature');
    },
  );

  it('accepts a timestamp with leading zeros as long as it is signed as sent', () => {
    const ts = '0' + String(TS);
    const headers = {
      'webhook-id': ID,
      'webhook-timestamp': ts,
      'webhook-signature': signRaw(SECRET, ID, ts, PAYLOAD),
    };
    expect(scheme.verify(input(headers, PAYLOAD, AT), source({ secrets: [SECRET] }))).toBeNull();
  });
});

describe('standard-webhooks: cross-check with the standardwebhooks library', () => {
  it('accepts whatever the library signs, at the signed time', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/),
        fc.integer({ min: 0, max: 4_000_000_000 }),
        fc.string({ maxLength: 200 }),
        (key, id, ts, payload) => {
          const secret = 'whsec_' + Buffer.from(key).toString('base64');
          const signature = new Webhook(secret).sign(id, new Date(ts * 1000), payload);
          const headers = { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signature };
          expect(scheme.verify(input(headers, payload, ts * 1000), source({ secrets: [secret] }))).toBeNull();
          // And the library accepts what we would accept: both verify the same signature string.
          expect(signRaw(secret, id, String(ts), payload)).toBe(signature);
        },
      ),
    );
  });

  it('agrees with the library on the vector and its negative cases, at the same (faked) clock', () => {
    jest.useFakeTimers({ now: AT });
    try {
      const libHeaders = (signature: string) => ({
        'webhook-id': ID,
        'webhook-timestamp': String(TS),
        'webhook-signature': signature,
      });
      const lib = (signature: string) => {
        try {
          new Webhook(SECRET).verify(PAYLOAD, libHeaders(signature));
          return true;
        } catch {
          return false;
        }
      };
      expect(new Webhook(SECRET).verify(PAYLOAD, libHeaders(SIG))).toEqual({ test: 2432232314 });
      for (const signature of [
        SIG,
        `v1,bogus ${SIG}`,
        `${V1A} ${SIG}`,
        'v1,dawfeoifkpqwoekfpqoekf',
        SIG.slice(0, -3),
        'v1,',
        SIG.replace('v1,', 'v2,'),
        V1A,
      ]) {
        expect([signature, verifyVector(signature, AT) === null]).toEqual([signature, lib(signature)]);
      }
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('standard-webhooks: identify', () => {
  const src = source({ secrets: [SECRET] });
  it('uses webhook-id, else svix-id, else a body hash', () => {
    expect(scheme.identify(input(vectorHeaders(), PAYLOAD, AT), { type: 'x' }, src).deliveryId).toBe(ID);
    expect(scheme.identify(input({ 'svix-id': 'msg_svix' }, PAYLOAD, AT), undefined, src).deliveryId).toBe('msg_svix');
    expect(scheme.identify(input({}, PAYLOAD, AT), undefined, src).deliveryId).toBe(bodyHash(Buffer.from(PAYLOAD)));
    expect(bodyHash(Buffer.from(PAYLOAD))).toMatch(/^[0-9a-f]{64}$/);
  });

  it('takes the event type from the body `type` when it is a string', () => {
    const i = input(vectorHeaders(), PAYLOAD, AT);
    expect(scheme.identify(i, { type: 'invoice.paid' }, src).eventType).toBe('invoice.paid');
    expect(scheme.identify(i, { type: 42 }, src).eventType).toBeUndefined();
    expect(scheme.identify(i, { data: {} }, src).eventType).toBeUndefined();
    expect(scheme.identify(i, undefined, src).eventType).toBeUndefined();
    expect(scheme.identify(i, ['type'], src).eventType).toBeUndefined();
  });
});
