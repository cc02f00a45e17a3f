import { beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT, exportSPKI, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import type { AppConfig } from '../config/app-config.js';
import { AuthError, Authenticator, checkPublish, checkSubscribe, type Principal } from './auth.service.js';

type AuthConfig = AppConfig['auth'];

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256!';
const NOW = Date.UTC(2026, 10, 26, 17, 0, 0);
const nowSec = NOW / 1000;
const clock = () => NOW;

const apiKeys: AuthConfig['apiKeys'] = [
  { id: 'billing', key: 'key-billing-123', publish: ['events.billing.>'], subscribe: ['events.>'] },
  { id: 'reader', key: 'key-reader-456', publish: [], subscribe: [] },
];

function config(jwt?: Partial<NonNullable<AuthConfig['jwt']>>, anonymous: string[] = []): AuthConfig {
  return {
    jwt: jwt ? { clockToleranceMs: 0, ...jwt } : undefined,
    apiKeys,
    anonymous: { subscribe: anonymous },
  };
}

function hs256(claims: JWTPayload, secret = SECRET, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', ...header }).sign(new TextEncoder().encode(secret));
}

const good = { sub: 'user-1', exp: nowSec + 600, subscribe: ['events.acme.>'] };

async function expectUnauthorized(p: Promise<unknown>, message?: RegExp): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  expect((err as AuthError).code).toBe('unauthorized');
  if (message) expect((err as AuthError).message).toMatch(message);
}

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

describe('Authenticator: HS256', () => {
  const auth = new Authenticator(config({ secret: SECRET }), clock);

  it('accepts a valid token', async () => {
    const p = await auth.authenticate(await hs256(good));
    expect(p).toEqual({
      kind: 'jwt',
      id: 'user-1',
      subscribe: ['events.acme.>'],
      publish: [],
      expiresAtMs: (nowSec + 600) * 1000,
    });
  });

  it('refuses a bad signature', async () => {
    await expectUnauthorized(
      auth.authenticate(await hs256(good, 'another-secret-that-is-long-enough-for-hs256')),
      /signature/,
    );
    const t = await hs256(good);
    const tampered = t.split('.');
    tampered[1] = b64url({ ...good, subscribe: ['>'] });
    await expectUnauthorized(auth.authenticate(tampered.join('.')));
  });

  it('refuses alg none', async () => {
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(good)}.`;
    await expectUnauthorized(auth.authenticate(unsigned));
  });

  it('refuses another HMAC algorithm than the configured one', async () => {
    const t = await new SignJWT(good)
      .setProtectedHeader({ alg: 'HS512' })
      .sign(new TextEncoder().encode(SECRET + SECRET));
    await expectUnauthorized(auth.authenticate(t), /algorithm/);
  });

  it('refuses an expired token and one without exp', async () => {
    await expectUnauthorized(auth.authenticate(await hs256({ ...good, exp: nowSec - 1 })), /expired/);
    await expectUnauthorized(auth.authenticate(await hs256({ ...good, exp: nowSec })), /expired/); // exp is exclusive
    const { exp: _exp, ...noExp } = good;
    await expectUnauthorized(auth.authenticate(await hs256(noExp)), /exp/);
    await expectUnauthorized(auth.authenticate(await hs256({ ...good, exp: 'tomorrow' } as unknown as JWTPayload)));
  });

  it('refuses a token not yet valid', async () => {
    await expectUnauthorized(auth.authenticate(await hs256({ ...good, nbf: nowSec + 60 })), /nbf/);
    expect((await auth.authenticate(await hs256({ ...good, nbf: nowSec }))).kind).toBe('jwt');
  });

  it('honours the clock tolerance for exp and nbf', async () => {
    const lenient = new Authenticator(config({ secret: SECRET, clockToleranceMs: 30_000 }), clock);
    expect((await lenient.authenticate(await hs256({ ...good, exp: nowSec - 20 }))).kind).toBe('jwt');
    expect((await lenient.authenticate(await hs256({ ...good, nbf: nowSec + 20 }))).kind).toBe('jwt');
    await expectUnauthorized(lenient.authenticate(await hs256({ ...good, exp: nowSec - 40 })));
    await expectUnauthorized(lenient.authenticate(await hs256({ ...good, nbf: nowSec + 40 })));
  });

  it('uses the injected clock', async () => {
    const t = await hs256(good);
    const later = new Authenticator(config({ secret: SECRET }), () => NOW + 601_000);
    await expectUnauthorized(later.authenticate(t), /expired/);
    expect((await new Authenticator(config({ secret: SECRET }), () => NOW + 599_000).authenticate(t)).kind).toBe('jwt');
  });

  it('checks iss and aud when configured', async () => {
    const strict = new Authenticator(
      config({ secret: SECRET, issuer: 'https://id.example', audience: 'hookstream' }),
      clock,
    );
    const ok = await hs256({ ...good, iss: 'https://id.example', aud: 'hookstream' });
    expect((await strict.authenticate(ok)).id).toBe('user-1');
    expect(
      (await strict.authenticate(await hs256({ ...good, iss: 'https://id.example', aud: ['x', 'hookstream'] }))).kind,
    ).toBe('jwt');
    await expectUnauthorized(
      strict.authenticate(await hs256({ ...good, iss: 'https://evil.example', aud: 'hookstream' })),
      /iss/,
    );
    await expectUnauthorized(
      strict.authenticate(await hs256({ ...good, iss: 'https://id.example', aud: 'other' })),
      /aud/,
    );
    await expectUnauthorized(strict.authenticate(await hs256({ ...good, aud: 'hookstream' })), /iss/);
    await expectUnauthorized(strict.authenticate(await hs256({ ...good, iss: 'https://id.example' })), /aud/);
    // Not configured: any iss/aud is fine.
    expect((await auth.authenticate(await hs256({ ...good, iss: 'whoever', aud: 'whatever' }))).kind).toBe('jwt');
  });

  it.each([
    ['a string', 'events.>'],
    ['an array with a number', ['events.a', 1]],
    ['an array with null', [null]],
    ['an object', { 0: 'events.>' }],
    ['null', null],
  ])('refuses a subscribe claim that is %s', async (_label, subscribe) => {
    await expectUnauthorized(auth.authenticate(await hs256({ ...good, subscribe } as JWTPayload)), /subscribe/);
  });

  it('refuses a missing subscribe claim', async () => {
    const { subscribe: _s, ...rest } = good;
    await expectUnauthorized(auth.authenticate(await hs256(rest)), /subscribe/);
  });

  it.each([['events..acme'], ['events.>.x'], [''], ['events.a b'], ['events.acme.']])(
    'refuses an invalid pattern %j in the claim',
    async (bad) => {
      await expectUnauthorized(auth.authenticate(await hs256({ ...good, subscribe: ['events.ok', bad] })), /pattern/);
    },
  );

  it('allows an empty subscribe array (a grant of nothing)', async () => {
    expect((await auth.authenticate(await hs256({ ...good, subscribe: [] }))).subscribe).toEqual([]);
  });

  it('refuses a non-string sub, allows a missing one', async () => {
    await expectUnauthorized(auth.authenticate(await hs256({ ...good, sub: 42 } as unknown as JWTPayload)));
    const { sub: _sub, ...rest } = good;
    expect((await auth.authenticate(await hs256(rest))).id).toBe('');
  });

  it('refuses garbage', async () => {
    for (const t of ['x', 'a.b.c', '...', 'Bearer x', 'x'.repeat(70_000)])
      await expectUnauthorized(auth.authenticate(t));
    for (const t of [42, {}, ['key-billing-123'], true]) await expectUnauthorized(auth.authenticate(t));
  });
});

describe('Authenticator: RS256 / ES256 public keys', () => {
  let rsaPem: string;
  let ecPem: string;
  let rsaPrivate: CryptoKey;
  let ecPrivate: CryptoKey;

  beforeAll(async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    rsaPem = await exportSPKI(rsa.publicKey);
    ecPem = await exportSPKI(ec.publicKey);
    rsaPrivate = rsa.privateKey;
    ecPrivate = ec.privateKey;
  });

  it('accepts RS256 with an RSA public key', async () => {
    const auth = new Authenticator(config({ publicKey: rsaPem }), clock);
    const t = await new SignJWT(good).setProtectedHeader({ alg: 'RS256' }).sign(rsaPrivate);
    expect(await auth.authenticate(t)).toMatchObject({ kind: 'jwt', id: 'user-1', subscribe: ['events.acme.>'] });
  });

  it('accepts ES256 with an EC P-256 public key', async () => {
    const auth = new Authenticator(config({ publicKey: ecPem }), clock);
    const t = await new SignJWT(good).setProtectedHeader({ alg: 'ES256' }).sign(ecPrivate);
    expect(await auth.authenticate(t)).toMatchObject({ kind: 'jwt', id: 'user-1' });
  });

  it('refuses a token signed by another key pair', async () => {
    const other = await generateKeyPair('ES256');
    const auth = new Authenticator(config({ publicKey: ecPem }), clock);
    await expectUnauthorized(
      auth.authenticate(await new SignJWT(good).setProtectedHeader({ alg: 'ES256' }).sign(other.privateKey)),
    );
  });

  it('refuses key confusion: HS256 signed with the public key PEM as the HMAC secret', async () => {
    for (const pem of [rsaPem, ecPem]) {
      const auth = new Authenticator(config({ publicKey: pem }), clock);
      await expectUnauthorized(auth.authenticate(await hs256(good, pem)), /algorithm/);
    }
  });

  it('refuses a token whose alg differs from the key (PS256 with the RSA key)', async () => {
    const auth = new Authenticator(config({ publicKey: rsaPem }), clock);
    const t = await new SignJWT(good)
      .setProtectedHeader({ alg: 'PS256' })
      .sign((await generateKeyPair('PS256')).privateKey);
    await expectUnauthorized(auth.authenticate(t), /algorithm/);
  });

  it('refuses alg none with a public key configured', async () => {
    const auth = new Authenticator(config({ publicKey: rsaPem }), clock);
    await expectUnauthorized(auth.authenticate(`${b64url({ alg: 'none' })}.${b64url(good)}.`));
  });

  it('refuses to start with an unsupported key', async () => {
    const edPem = await exportSPKI((await generateKeyPair('EdDSA', { extractable: true })).publicKey);
    expect(() => new Authenticator(config({ publicKey: edPem }))).toThrow(/unsupported key/);
    const p384Pem = await exportSPKI((await generateKeyPair('ES384', { extractable: true })).publicKey);
    expect(() => new Authenticator(config({ publicKey: p384Pem }))).toThrow(/unsupported key/);
    expect(() => new Authenticator(config({ publicKey: 'not a pem' }))).toThrow();
  });
});

describe('Authenticator: API keys and anonymous', () => {
  const auth = new Authenticator(config({ secret: SECRET }, ['events.public.>']), clock);
  const noJwt = new Authenticator(config(), clock);

  it('gives an API key its grants', async () => {
    expect(await auth.authenticate('key-billing-123')).toEqual({
      kind: 'apiKey',
      id: 'billing',
      subscribe: ['events.>'],
      publish: ['events.billing.>'],
    });
    expect(await noJwt.authenticate('key-reader-456')).toEqual({
      kind: 'apiKey',
      id: 'reader',
      subscribe: [],
      publish: [],
    });
  });

  it('returns copies, so a caller cannot change the configured grants', async () => {
    const p = await auth.authenticate('key-billing-123');
    p.subscribe.push('>');
    expect((await auth.authenticate('key-billing-123')).subscribe).toEqual(['events.>']);
  });

  it('gives no credentials the anonymous grant', async () => {
    for (const t of [undefined, null, '']) {
      expect(await auth.authenticate(t)).toEqual({
        kind: 'anonymous',
        id: 'anonymous',
        subscribe: ['events.public.>'],
        publish: [],
      });
    }
    expect((await noJwt.authenticate(undefined)).subscribe).toEqual([]);
  });

  it('refuses a near-miss key, and any non-key token when no JWT is configured', async () => {
    for (const t of ['key-billing-12', 'key-billing-1234', 'KEY-BILLING-123', ' key-billing-123']) {
      await expectUnauthorized(noJwt.authenticate(t));
      await expectUnauthorized(auth.authenticate(t));
    }
    await expectUnauthorized(noJwt.authenticate(await hs256(good)));
  });

  it('authenticateApiKey takes only Bearer <configured key>', async () => {
    expect(auth.authenticateApiKey('Bearer key-billing-123')).toMatchObject({ kind: 'apiKey', id: 'billing' });
    expect(auth.authenticateApiKey('bearer key-reader-456')).toMatchObject({ id: 'reader' });
    const refused = [
      undefined,
      '',
      'key-billing-123',
      'Bearer',
      'Bearer ',
      'Basic key-billing-123',
      'Bearer key-billing-12',
      'Bearer key-billing-123 x',
      'Bearer\tkey-billing-123',
      await hs256(good),
      `Bearer ${await hs256(good)}`,
    ];
    for (const h of refused) {
      let err: unknown;
      try {
        auth.authenticateApiKey(h);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).code).toBe('unauthorized');
    }
  });
});

describe('checkSubscribe', () => {
  const principal: Principal = { kind: 'jwt', id: 'u', subscribe: ['events.acme.>'], publish: [] };

  it.each([
    [['events.acme.>'], null],
    [['events.acme'], 'forbidden'], // `>` needs a token after acme
    [['events.acme.x'], null],
    [['events.acme.*'], null],
    [['events.acme.*.y'], null],
    [['events.acme.x.>'], null],
    [['events.>'], 'forbidden'],
    [['>'], 'forbidden'],
    [['*.acme.>'], 'forbidden'],
    [['events.*.x'], 'forbidden'],
    [['events.acmex.>'], 'forbidden'],
    [['events.acme.x', 'events.other.x'], 'forbidden'], // one outside refuses all, never narrowed
    [['events..acme'], 'invalid_subject'],
    [['events.acme.'], 'invalid_subject'],
    [['.events'], 'invalid_subject'],
    [['events.acme.>.x'], 'invalid_subject'],
    [['events.acme.a b'], 'invalid_subject'],
    [[''], 'invalid_subject'],
    [[], 'invalid_subject'],
    [['events.>', 'events..x'], 'invalid_subject'], // invalid wins over forbidden
  ])('%j → %j', (patterns, expected) => {
    expect(checkSubscribe(principal, patterns)).toBe(expected);
  });

  it('refuses everything to an empty grant', () => {
    expect(checkSubscribe({ ...principal, subscribe: [] }, ['events.acme.x'])).toBe('forbidden');
  });

  it('refuses non-string patterns as invalid', () => {
    expect(checkSubscribe(principal, [42 as unknown as string])).toBe('invalid_subject');
    expect(checkSubscribe(principal, 'events.acme.>' as unknown as string[])).toBe('invalid_subject');
  });
});

describe('checkPublish', () => {
  const principal: Principal = { kind: 'apiKey', id: 'billing', subscribe: [], publish: ['events.billing.>'] };

  it.each([
    ['events.billing.invoice.paid', null],
    ['events.billing.x', null],
    ['events.billing', 'forbidden'],
    ['events.other.x', 'forbidden'],
    ['events.billing.*', 'invalid_subject'],
    ['events.billing.>', 'invalid_subject'],
    ['events.billing..x', 'invalid_subject'],
    ['other.billing.x', 'invalid_subject'],
  ])('%j → %j', (subject, expected) => {
    expect(checkPublish(principal, subject, 'events')).toBe(expected);
  });
});
