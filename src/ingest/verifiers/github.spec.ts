import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { sign, verify as octokitVerify } from '@octokit/webhooks-methods';
import fc from 'fast-check';
import type { SourceConfig } from '../../config/app-config.js';
import { githubScheme as scheme } from './github.js';
import { bodyHash, type WebhookInput } from './scheme-helpers.js';

const source = (over: Partial<SourceConfig> = {}): SourceConfig => ({
  name: 'github',
  verifier: 'github',
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

// Official vector, docs.github.com "Validating webhook deliveries".
const SECRET = "It's a Secret to Everybody";
const PAYLOAD = 'Hello, World!';
const SIG = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

const verify = (sig: string | string[], secrets = [SECRET], body: string | Buffer = PAYLOAD, nowMs = Date.now()) =>
  scheme.verify(input({ 'x-hub-signature-256': sig }, body, nowMs), source({ secrets }));

describe('github: official vector', () => {
  it('@octokit/webhooks-methods signs exactly this value and verifies it', async () => {
    expect(await sign(SECRET, PAYLOAD)).toBe(SIG);
    expect(await octokitVerify(SECRET, PAYLOAD, SIG)).toBe(true);
  });

  it('is accepted at any clock: GitHub signs no timestamp', () => {
    expect(verify(SIG)).toBeNull();
    expect(verify(SIG, [SECRET], PAYLOAD, 0)).toBeNull();
    expect(verify(SIG, [SECRET], PAYLOAD, 8.64e15)).toBeNull();
  });

  it.each([
    ['a changed body', SIG, 'Hello, World?'],
    ['a signature with one digit changed', SIG.replace('7571', '7572'), PAYLOAD],
    ['a truncated signature', SIG.slice(0, -2), PAYLOAD],
    ['no sha256= prefix', SIG.slice('sha256='.length), PAYLOAD],
    ['the legacy sha1= form', 'sha1=' + createHmac('sha1', SECRET).update(PAYLOAD).digest('hex'), PAYLOAD],
    ['a non-hex signature', 'sha256=' + 'zz'.repeat(32), PAYLOAD],
    ['sha256= alone', 'sha256=', PAYLOAD],
  ])('refuses %s', (_name, sig, body) => {
    expect(verify(sig, [SECRET], body)).toBe('invalid_signature');
  });

  it('refuses a wrong secret, tries every secret (key rotation)', () => {
    expect(verify(SIG, ['wrong'])).toBe('invalid_signature');
    expect(verify(SIG, ['wrong', SECRET])).toBeNull();
    expect(verify(SIG, [SECRET, 'next'])).toBeNull();
  });

  it('is missing_signature without X-Hub-Signature-256 (the legacy sha1 header alone does not count)', () => {
    const legacy = { 'x-hub-signature': 'sha1=' + createHmac('sha1', SECRET).update(PAYLOAD).digest('hex') };
    expect(scheme.verify(input(legacy, PAYLOAD), source({ secrets: [SECRET] }))).toBe('missing_signature');
    expect(verify('')).toBe('missing_signature');
  });

  it('counts every value of a repeated header, also when Node joined them', () => {
    const bad = 'sha256=' + '0'.repeat(64);
    expect(verify([bad, SIG])).toBeNull();
    expect(verify(`${bad}, ${SIG}`)).toBeNull();
    expect(verify([bad, bad])).toBe('invalid_signature');
  });

  it('accepts upper-case hex digits', () => {
    expect(verify('sha256=' + SIG.slice(7).toUpperCase())).toBeNull();
  });
});

describe('github: cross-check with @octokit/webhooks-methods', () => {
  it('accepts whatever octokit signs, and octokit accepts what it signed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 40 }),
        // octokit refuses an empty payload.
        fc.string({ minLength: 1, maxLength: 300 }),
        async (secret, payload) => {
          const sig = await sign(secret, payload);
          expect(verify(sig, [secret], payload)).toBeNull();
          expect(verify(sig, [secret + 'x'], payload)).toBe('invalid_signature');
          expect(await octokitVerify(secret, payload, sig)).toBe(true);
        },
      ),
    );
  });
});

describe('github: identify', () => {
  const src = source({ secrets: [SECRET] });
  const guid = '72d3162e-cc78-11e3-81ab-4c9367dc0958';
  it('joins hook id and delivery guid with ":"', () => {
    const i = input({ 'x-github-hook-id': '123456', 'x-github-delivery': guid, 'x-github-event': 'push' }, '{}');
    expect(scheme.identify(i, {}, src)).toEqual({ deliveryId: `123456:${guid}`, eventType: 'push' });
  });
  it('uses the guid alone without a hook id, and a body hash without a guid', () => {
    expect(scheme.identify(input({ 'x-github-delivery': guid }, '{}'), {}, src).deliveryId).toBe(guid);
    expect(scheme.identify(input({ 'x-github-hook-id': '1' }, '{"a":1}'), {}, src).deliveryId).toBe(
      bodyHash(Buffer.from('{"a":1}')),
    );
  });
  it('appends the body action to the event when it is a string', () => {
    const i = input({ 'x-github-event': 'pull_request' }, '{}');
    expect(scheme.identify(i, { action: 'opened' }, src).eventType).toBe('pull_request.opened');
    expect(scheme.identify(i, { action: 7 }, src).eventType).toBe('pull_request');
    expect(scheme.identify(i, undefined, src).eventType).toBe('pull_request');
    expect(scheme.identify(i, { action: '' }, src).eventType).toBe('pull_request');
  });
  it('has no type without X-GitHub-Event', () => {
    expect(scheme.identify(input({}, '{}'), { action: 'opened' }, src).eventType).toBeUndefined();
  });
});
