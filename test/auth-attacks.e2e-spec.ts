/**
 * Issue "Reliability", part 3: auth attacks end to end over the real transports (docs/configuration.md,
 * docs/protocol.md). A bad token is
 * refused at the Socket.IO handshake (`connect_error` 'unauthorized') and on SSE (401 unauthorized); valid
 * credentials asking outside their grant get the ack `forbidden` / SSE 403 (never a narrowed subscription); a token
 * that expires mid-stream is closed with `closing` {reason: 'token_expired'} on both transports. The unit versions
 * live in src/auth/auth.service.spec.ts. Embedded store, no NATS.
 */
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { exportJWK, importPKCS8, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import type { Socket } from 'socket.io-client';
import { waitFor } from './harness/wait.js';
import {
  SocketCollector,
  SseReader,
  connectSocket,
  publishBatch,
  streamUrl,
  subscribeSocket,
  type SubscribeAck,
} from './support/clients.js';
import { testConfig } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';

jest.setTimeout(60_000);

const SECRET = 'auth-attacks-hs256-secret-0123456789abcdef';
const ISSUER = 'https://issuer.example';
const AUDIENCE = 'hookstream';
const PUBLISH_ONLY_KEY = 'pk_publish_only_0123456789abcdef';
const READER_KEY = 'rk_acme_reader_0123456789abcdef';
const PUBLISHER_KEY = 'pk_everything_0123456789abcdef';
const GRANT = ['events.acme.>'];

async function connectedClients(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const l of text.split('\n'))
    if (l.startsWith('hookstream_connected_clients{')) n += Number(l.slice(l.lastIndexOf(' ') + 1));
  return n;
}

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const nowS = () => Math.floor(Date.now() / 1000);

/** Valid claims for both gateways, overridable (a value of undefined removes the claim). */
function claims(over: Record<string, unknown> = {}): JWTPayload {
  const base: Record<string, unknown> = {
    sub: 'u1',
    iss: ISSUER,
    aud: AUDIENCE,
    iat: nowS(),
    exp: nowS() + 600,
    subscribe: GRANT,
    ...over,
  };
  for (const k of Object.keys(base)) if (base[k] === undefined) delete base[k];
  return base as JWTPayload;
}

/** A compact JWS built by hand (any header, any alg label), HMAC-SHA256 over the usual signing input. */
function handMade(header: Record<string, unknown>, payload: unknown, key: string | Buffer | null): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const sig = key === null ? '' : createHmac('sha256', key).update(input).digest('base64url');
  return `${input}.${sig}`;
}

const hs256 = (payload: JWTPayload, secret: string | Uint8Array = SECRET) =>
  new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(typeof secret === 'string' ? new TextEncoder().encode(secret) : secret);

describe('auth attacks', () => {
  const dirs: string[] = [];
  let hs: RunningGateway; // auth.jwt.secret (HS256) with issuer and audience
  let rs: RunningGateway; // auth.jwt.publicKey (RS256) with issuer and audience
  let rsPublicPem: string;
  let rsPrivate: CryptoKey;
  let attackerPrivate: CryptoKey;
  let attackerPublicJwk: Record<string, unknown>;
  const sockets: Socket[] = [];
  const readers: SseReader[] = [];

  const auth = (jwt: Record<string, unknown>) => ({
    jwt: { ...jwt, issuer: ISSUER, audience: AUDIENCE, clockTolerance: '0s' },
    apiKeys: [
      { id: 'publish-only', key: PUBLISH_ONLY_KEY, publish: ['events.>'] },
      { id: 'reader', key: READER_KEY, subscribe: ['events.acme.>'] },
      { id: 'publisher', key: PUBLISHER_KEY, publish: ['events.>'], subscribe: ['events.>'] },
    ],
    anonymous: { subscribe: [] },
  });

  async function gateway(jwt: Record<string, unknown>): Promise<RunningGateway> {
    const dataDir = mkdtempSync(join(tmpdir(), 'hookstream-auth-attacks-'));
    dirs.push(dataDir);
    return startGateway(testConfig({ dataDir, file: { auth: auth(jwt) } }));
  }

  beforeAll(async () => {
    const pair = (() => {
      const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      return {
        publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      };
    })();
    const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
    rsPublicPem = pair.publicPem;
    rsPrivate = await importPKCS8(pair.privatePem, 'RS256');
    attackerPrivate = await importPKCS8(
      attacker.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      'RS256',
    );
    attackerPublicJwk = { ...(await exportJWK(attacker.publicKey)) };
    [hs, rs] = await Promise.all([gateway({ secret: SECRET }), gateway({ publicKey: rsPublicPem })]);
  });

  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
    for (const r of readers.splice(0)) r.close();
  });

  afterAll(async () => {
    await Promise.all([hs?.close(), rs?.close()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const rs256 = (payload: JWTPayload, key: CryptoKey = rsPrivate, header: Record<string, unknown> = {}) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...header }).sign(key);

  const open = async (url: string, token?: string) => {
    const s = await connectSocket(url, token);
    sockets.push(s);
    return s;
  };
  const openSse = async (url: string, token?: string) => {
    const r = await SseReader.open(url, token === undefined ? {} : { token });
    readers.push(r);
    return r;
  };
  const expectAlive = async (gw: RunningGateway) => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  };

  /** The token is refused on both transports: connect_error 'unauthorized' and SSE 401 unauthorized. */
  async function expectRefused(gw: RunningGateway, token: string): Promise<void> {
    await expect(connectSocket(gw.url, token)).rejects.toThrow('unauthorized');
    const r = await openSse(streamUrl(gw.url, { subject: 'events.acme.>' }), token);
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: 'unauthorized', message: expect.any(String) });
    // The query-string form browsers use is refused the same way.
    const q = await openSse(streamUrl(gw.url, { subject: 'events.acme.>', access_token: token }));
    expect([q.status, (q.body as { error: string }).error]).toEqual([401, 'unauthorized']);
  }

  describe('control: the well-formed tokens are accepted', () => {
    it('HS256 on the secret gateway, RS256 on the public-key gateway', async () => {
      for (const [gw, token] of [
        [hs, await hs256(claims())],
        [rs, await rs256(claims())],
      ] as const) {
        const s = await open(gw.url, token);
        expect(await subscribeSocket(s, { subjects: ['events.acme.>'] })).toMatchObject({ ok: true });
        const r = await openSse(streamUrl(gw.url, { subject: 'events.acme.>' }), token);
        expect(r.status).toBe(200);
      }
    });
  });

  describe('forged, expired or malformed tokens are refused', () => {
    const cases: [string, 'hs' | 'rs', () => Promise<string> | string][] = [
      ['alg "none", no signature', 'hs', () => handMade({ alg: 'none', typ: 'JWT' }, claims(), null)],
      [
        'alg "none", signature kept',
        'hs',
        async () => {
          const [, payload, sig] = (await hs256(claims())).split('.');
          return `${b64url({ alg: 'none' })}.${payload}.${sig}`;
        },
      ],
      ['alg "None" (case trick)', 'hs', () => handMade({ alg: 'None' }, claims(), null)],
      ['alg "none" against the RS256 gateway', 'rs', () => handMade({ alg: 'none' }, claims(), null)],
      ['key confusion: HS256 signed with the RS256 public key (PEM)', 'rs', () => hs256(claims(), rsPublicPem)],
      [
        'key confusion: HS256 signed with the PEM, hand-made',
        'rs',
        () => handMade({ alg: 'HS256', typ: 'JWT' }, claims(), rsPublicPem),
      ],
      ['RS256 signed by another key', 'rs', () => rs256(claims(), attackerPrivate)],
      [
        'RS256 with the attacker key embedded in the header (jwk)',
        'rs',
        () => rs256(claims(), attackerPrivate, { jwk: attackerPublicJwk }),
      ],
      ['RS256 (a valid one) on the HS256 gateway', 'hs', () => rs256(claims())],
      ['HS256 with the wrong secret', 'hs', () => hs256(claims(), 'not-the-secret-0123456789abcdef')],
      [
        'a payload swapped under a valid signature',
        'hs',
        async () => {
          const [h, , sig] = (await hs256(claims())).split('.');
          return `${h}.${b64url(claims({ subscribe: ['>'] }))}.${sig}`;
        },
      ],
      [
        'an unknown critical header',
        'hs',
        () => handMade({ alg: 'HS256', crit: ['x-policy'], 'x-policy': 1 }, claims(), SECRET),
      ],
      ['expired', 'hs', () => hs256(claims({ iat: nowS() - 3600, exp: nowS() - 60 }))],
      ['expired (RS256)', 'rs', () => rs256(claims({ iat: nowS() - 3600, exp: nowS() - 60 }))],
      ['not yet valid (nbf in an hour)', 'hs', () => hs256(claims({ nbf: nowS() + 3600 }))],
      ['without exp', 'hs', () => hs256(claims({ exp: undefined }))],
      ['exp not a number', 'hs', () => handMade({ alg: 'HS256' }, claims({ exp: 'never' }), SECRET)],
      ['the wrong issuer', 'hs', () => hs256(claims({ iss: 'https://evil.example' }))],
      ['no issuer', 'hs', () => hs256(claims({ iss: undefined }))],
      ['the wrong audience', 'rs', () => rs256(claims({ aud: 'someone-else' }))],
      ['an audience list without ours', 'hs', () => hs256(claims({ aud: ['a', 'b'] }))],
      ['no audience', 'hs', () => hs256(claims({ aud: undefined }))],
      ['subscribe as a string', 'hs', () => hs256(claims({ subscribe: 'events.acme.>' }))],
      ['subscribe as an object', 'hs', () => hs256(claims({ subscribe: { 0: 'events.>' } }))],
      ['subscribe holding a number', 'hs', () => hs256(claims({ subscribe: ['events.acme.>', 1] }))],
      ['subscribe null', 'hs', () => hs256(claims({ subscribe: null }))],
      ['no subscribe claim', 'hs', () => hs256(claims({ subscribe: undefined }))],
      [
        'subscribe holding an invalid pattern (empty token)',
        'hs',
        () => hs256(claims({ subscribe: ['events.acme..'] })),
      ],
      ['sub not a string', 'hs', () => hs256(claims({ sub: 42 }))],
      ['four segments', 'hs', async () => `${await hs256(claims())}.x`],
      ['not a JWT at all', 'hs', () => 'Bearer-ish garbage'],
      ['an unknown API key', 'hs', () => 'pk_unknown_0123456789abcdef'],
      ['an API key with one character changed', 'hs', () => `${PUBLISHER_KEY.slice(0, -1)}0`],
      ['an API key prefix', 'hs', () => PUBLISHER_KEY.slice(0, 16)],
    ];

    it.each(cases)('%s', async (_what, which, make) => {
      const gw = which === 'hs' ? hs : rs;
      await expectRefused(gw, await make());
      await expectAlive(gw);
    });

    it('SSE refuses other Authorization schemes and a repeated access_token', async () => {
      const good = await hs256(claims());
      for (const authorization of [
        `Basic ${Buffer.from('a:b').toString('base64')}`,
        `Bearer ${good} extra`,
        'Bearer',
        good,
      ]) {
        const r = await SseReader.open(streamUrl(hs.url, { subject: 'events.acme.>' }), {
          headers: { Authorization: authorization },
        });
        readers.push(r);
        expect([r.status, (r.body as { error: string }).error]).toEqual([401, 'unauthorized']);
      }
      const twice = await openSse(streamUrl(hs.url, { subject: 'events.acme.>', access_token: [good, good] }));
      expect([twice.status, (twice.body as { error: string }).error]).toEqual([401, 'unauthorized']);
    });

    it('no credentials while the anonymous grant is empty: SSE 401, Socket.IO connect_error unauthorized', async () => {
      const r = await openSse(streamUrl(hs.url, { subject: 'events.acme.>' }));
      expect([r.status, (r.body as { error: string }).error]).toEqual([401, 'unauthorized']);
      await expect(open(hs.url)).rejects.toThrow('unauthorized');
    });
  });

  describe('a grant of events.acme.> is never widened', () => {
    let token: string;
    beforeAll(async () => {
      token = await hs256(claims());
    });

    const outside: string[][] = [
      ['events.>'],
      ['>'],
      ['*'],
      ['events.*.x'],
      ['events.*'],
      ['events.*.>'],
      ['*.acme.>'],
      ['events.acme'],
      ['events.acmex.>'],
      ['events.acm.>'],
      ['events.ACME.>'],
      ['events.acme.>', 'events.other.x'], // one outside: the whole request is refused, not narrowed
    ];
    it.each(outside)('asking for %j is forbidden (Socket.IO ack, SSE 403)', async (...subjects) => {
      const s = await open(hs.url, token);
      expect(await subscribeSocket(s, { subjects })).toEqual({ ok: false, error: 'forbidden' });
      const r = await openSse(streamUrl(hs.url, { subject: subjects }), token);
      expect(r.status).toBe(403);
      expect(r.body).toEqual({ error: 'forbidden', message: expect.any(String) });
    });

    const emptyTokens: string[] = [
      'events.acme..x',
      'events.acme.',
      '.events.acme.x',
      'events..>',
      'events.acme.>.',
      'events.acme..>',
      '',
      '.',
      '..',
      'events.acme.> ',
    ];
    it.each(emptyTokens)('the empty-token trick %j is invalid_subject (Socket.IO ack, SSE 400)', async (subject) => {
      const s = await open(hs.url, token);
      expect(await subscribeSocket(s, { subjects: [subject] })).toEqual({ ok: false, error: 'invalid_subject' });
      const r = await openSse(streamUrl(hs.url, { subject }), token);
      expect([r.status, (r.body as { error: string }).error]).toEqual([400, 'invalid_subject']);
    });

    it.each([['events.acme.x'], ['events.acme.*'], ['events.acme.>'], ['events.acme.*.y'], ['events.acme.x.>']])(
      '%s, inside the grant, is allowed on both transports',
      async (subject) => {
        const s = await open(hs.url, token);
        expect(await subscribeSocket(s, { subjects: [subject] })).toMatchObject({ ok: true });
        const r = await openSse(streamUrl(hs.url, { subject }), token);
        expect(r.status).toBe(200);
      },
    );

    it('a forbidden request delivers nothing: the socket sees no event from outside the grant', async () => {
      const s = await open(hs.url, token);
      const c = new SocketCollector(s);
      const acks: SubscribeAck[] = [
        await subscribeSocket(s, { subjects: ['events.>'] }),
        await subscribeSocket(s, { subjects: ['events.acme.>'] }),
      ];
      expect(acks.map((a) => a.ok)).toEqual([false, true]);
      await publishBatch(
        hs.url,
        [
          { subject: 'events.other.secret', data: 1 },
          { subject: 'events.acme.visible', data: 2 },
        ],
        PUBLISHER_KEY,
      );
      await waitFor(() => c.events().length >= 1, { message: 'the allowed event' });
      expect(c.events().map((e) => e.subject)).toEqual(['events.acme.visible']);
    });
  });

  describe('API keys', () => {
    it('a key with only publish rights may subscribe to nothing (Socket.IO forbidden, SSE 403)', async () => {
      const s = await open(hs.url, PUBLISH_ONLY_KEY);
      for (const subjects of [['events.>'], ['events.billing.x'], ['>']]) {
        expect(await subscribeSocket(s, { subjects })).toEqual({ ok: false, error: 'forbidden' });
      }
      const r = await openSse(streamUrl(hs.url, { subject: 'events.billing.x' }), PUBLISH_ONLY_KEY);
      expect([r.status, (r.body as { error: string }).error]).toEqual([403, 'forbidden']);
      const q = await openSse(streamUrl(hs.url, { subject: 'events.>', access_token: PUBLISH_ONLY_KEY }));
      expect([q.status, (q.body as { error: string }).error]).toEqual([403, 'forbidden']);
    });

    it('a reader key of events.acme.> asking for events.> is forbidden', async () => {
      const s = await open(hs.url, READER_KEY);
      expect(await subscribeSocket(s, { subjects: ['events.>'] })).toEqual({ ok: false, error: 'forbidden' });
      expect(await subscribeSocket(s, { subjects: ['events.acme.>'] })).toMatchObject({ ok: true });
    });

    it('a subscribe-only key cannot publish (POST /v1/events 403 forbidden)', async () => {
      const res = await fetch(`${hs.url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${READER_KEY}` },
        body: JSON.stringify({ subject: 'events.acme.x', data: 1 }),
      });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({ error: 'forbidden', message: expect.any(String) });
    });
  });

  describe('a token that expires mid-stream', () => {
    it('is closed at exp on both transports (closing {reason: token_expired}, then the end), and not accepted again', async () => {
      // exp is whole seconds: 2-3 s from now, with no clock tolerance on this gateway.
      const exp = nowS() + 3;
      const token = await hs256(claims({ exp }));
      const s = await open(hs.url, token);
      const c = new SocketCollector(s);
      expect(await subscribeSocket(s, { subjects: ['events.acme.>'] })).toMatchObject({ ok: true });
      const r = await openSse(streamUrl(hs.url, { subject: 'events.acme.>' }), token);
      expect(r.status).toBe(200);
      await r.waitForFrames((f) => f.some((x) => x.event === 'ready'), 'ready');

      // Live before expiry: both see an event.
      await publishBatch(hs.url, [{ subject: 'events.acme.before', data: 1 }], PUBLISHER_KEY);
      await waitFor(() => c.events().length === 1 && r.deliveries().length === 1, {
        message: 'the event before expiry',
      });

      await c.waitForDisconnect(10_000);
      expect(c.closings).toEqual([{ reason: 'token_expired', cursor: expect.any(String) }]);
      expect(c.timeline).toEqual(['closing', 'disconnect']);
      expect(c.disconnectReason).toBe('io server disconnect');
      await r.waitForEnd(10_000);
      const closing = r.named('closing');
      expect(closing).toHaveLength(1);
      expect(JSON.parse(closing[0].data as string)).toEqual({ reason: 'token_expired' });
      expect(r.frames[r.frames.length - 1].event).toBe('closing');
      expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);

      // Closed, not kept alive: the gateway no longer counts either connection.
      await waitFor(async () => (await connectedClients(hs.url)) === 0, { message: 'both connections released' });
      expect(c.events().map((e) => e.subject)).toEqual(['events.acme.before']);
      expect(r.deliveries().map((d) => d.subject)).toEqual(['events.acme.before']);

      // The same token is now refused outright.
      await expectRefused(hs, token);
      await expectAlive(hs);
    });
  });
});
