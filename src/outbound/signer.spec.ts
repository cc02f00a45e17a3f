import { describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { generateSecret, isValidSecret } from './endpoint-rules.js';
import { signStandardWebhook } from './signer.js';

const body = Buffer.from('{"specversion":"1.0","id":"evt_1","data":{"a":1}}');

describe('signStandardWebhook', () => {
  it('produces a signature the official standardwebhooks library verifies', () => {
    const secret = generateSecret();
    const ts = Math.floor(Date.now() / 1000);
    const signature = signStandardWebhook('evt_1', ts, body, [secret]);
    const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': String(ts), 'webhook-signature': signature };
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body.toString()));
  });

  it('matches the library’s own signing byte for byte', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const expected = new Webhook(secret).sign('msg_1', new Date(1_614_265_330_000), body);
    expect(signStandardWebhook('msg_1', 1_614_265_330, body, [secret])).toBe(expected);
  });

  it('signs with both secrets during a rotation grace: a receiver holding either verifies', () => {
    const [next, prev] = [generateSecret(), generateSecret()];
    const ts = Math.floor(Date.now() / 1000);
    const signature = signStandardWebhook('evt_2', ts, body, [next, prev]);
    expect(signature.split(' ')).toHaveLength(2);
    const headers = { 'webhook-id': 'evt_2', 'webhook-timestamp': String(ts), 'webhook-signature': signature };
    expect(() => new Webhook(next).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(prev).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
  });

  it('refuses to sign without a secret', () => {
    expect(() => signStandardWebhook('x', 1, body, [])).toThrow(RangeError);
  });
});

describe('endpoint secrets', () => {
  it('generates whsec_ + base64 of 24 bytes', () => {
    const s = generateSecret();
    expect(s).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(isValidSecret(s)).toBe(true);
  });

  it.each([
    ['whsec_' + Buffer.alloc(24, 1).toString('base64'), true],
    ['whsec_' + Buffer.alloc(64, 1).toString('base64'), true],
    ['whsec_' + Buffer.alloc(23, 1).toString('base64'), false],
    ['whsec_' + Buffer.alloc(65, 1).toString('base64'), false],
    [Buffer.alloc(24, 1).toString('base64'), false],
    ['whsec_not base64 at all!!!!!!!!!!!!!!', false],
    ['whsec_', false],
    [42, false],
  ])('isValidSecret(%p) = %p', (secret, ok) => {
    expect(isValidSecret(secret)).toBe(ok);
  });
});
