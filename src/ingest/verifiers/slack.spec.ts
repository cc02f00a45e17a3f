import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { SourceConfig } from '../../config/app-config.js';
import { slackScheme as scheme } from './slack.js';
import { bodyHash, type WebhookInput } from './scheme-helpers.js';

const source = (over: Partial<SourceConfig> = {}): SourceConfig => ({
  name: 'slack',
  verifier: 'slack',
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

// Official worked example, "Verifying requests from Slack". The secret ends in 85a5.
const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const TS = '1531420618';
const BODY =
  'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
const SIG = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';
const AT = Number(TS) * 1000 + 10_000;

const sign = (secret: string, ts: string, body: string) =>
  'v0=' + createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex');
const verify = (sig: string | string[], nowMs = AT, secrets = [SECRET], ts: string = TS, body: string = BODY) =>
  scheme.verify(input({ 'x-slack-signature': sig, 'x-slack-request-timestamp': ts }, body, nowMs), source({ secrets }));

describe('slack: official vector', () => {
  it('matches an independent HMAC', () => {
    expect(sign(SECRET, TS, BODY)).toBe(SIG);
  });

  it('is refused as stale at the real clock, accepted with the clock injected', () => {
    expect(verify(SIG, Date.now())).toBe('timestamp_out_of_tolerance');
    expect(verify(SIG, AT)).toBeNull();
    expect(verify(SIG, Number(TS) * 1000 + 300_000)).toBeNull();
    expect(verify(SIG, Number(TS) * 1000 - 300_000)).toBeNull();
  });

  it('applies the tolerance both ways', () => {
    expect(verify(SIG, Number(TS) * 1000 + 301_000)).toBe('timestamp_out_of_tolerance');
    expect(verify(SIG, Number(TS) * 1000 - 301_000)).toBe('timestamp_out_of_tolerance');
  });

  it('refuses the truncated secret some repositories copy (…85a)', () => {
    expect(verify(SIG, AT, [SECRET.slice(0, -1)])).toBe('invalid_signature');
  });

  it.each([
    ['a changed body', SIG, TS, BODY + '&x=1'],
    ['a changed timestamp', SIG, String(Number(TS) + 1), BODY],
    ['one digit changed', SIG.replace('a211', 'a212'), TS, BODY],
    ['no v0= prefix', SIG.slice(3), TS, BODY],
    ['a v1= prefix', SIG.replace('v0=', 'v1='), TS, BODY],
    ['a truncated signature', SIG.slice(0, -1), TS, BODY],
  ])('refuses %s', (_name, sig, ts, body) => {
    expect(verify(sig, AT, [SECRET], ts, body)).toBe('invalid_signature');
  });

  it('is missing_signature without either header', () => {
    const src = source({ secrets: [SECRET] });
    expect(scheme.verify(input({ 'x-slack-signature': SIG }, BODY, AT), src)).toBe('missing_signature');
    expect(scheme.verify(input({ 'x-slack-request-timestamp': TS }, BODY, AT), src)).toBe('missing_signature');
  });

  it('checks the signature before the timestamp', () => {
    expect(verify(SIG.replace('a211', 'a212'), Date.now())).toBe('invalid_signature');
  });

  it('tries every secret and every value of a repeated header', () => {
    expect(verify(SIG, AT, ['old', SECRET])).toBeNull();
    const bad = sign('other', TS, BODY);
    expect(verify([bad, SIG])).toBeNull();
    expect(verify(`${bad}, ${SIG}`)).toBeNull();
    expect(verify([bad])).toBe('invalid_signature');
  });

  it.each(['1e9', '0x5B47D24A', '-1531420618', '1531420618.0', '99999999999999999999'])(
    'a validly signed timestamp %p is timestamp_out_of_tolerance, a badly signed one invalid_signature',
    (ts) => {
      expect(verify(sign(SECRET, ts, BODY), AT, [SECRET], ts)).toBe('timestamp_out_of_tolerance');
      expect(verify(SIG, AT, [SECRET], ts)).toBe('invalid_signature');
    },
  );

  it('reads the first part of a comma-joined repeated timestamp header', () => {
    expect(verify(SIG, AT, [SECRET], `${TS}, ${TS}`)).toBeNull();
  });
});

describe('slack: identify', () => {
  const src = source({ secrets: [SECRET] });
  const i = input({}, '{"event_id":"Ev1"}', AT);
  it('uses body event_id, else a body hash', () => {
    expect(scheme.identify(i, { event_id: 'Ev1', type: 'event_callback' }, src).deliveryId).toBe('Ev1');
    expect(scheme.identify(i, undefined, src).deliveryId).toBe(bodyHash(Buffer.from('{"event_id":"Ev1"}')));
  });
  it('uses body event.type, else body type, else nothing', () => {
    const json = { type: 'event_callback', event: { type: 'app_mention' } };
    expect(scheme.identify(i, json, src).eventType).toBe('app_mention');
    expect(scheme.identify(i, { type: 'url_verification', challenge: 'x' }, src).eventType).toBe('url_verification');
    expect(scheme.identify(i, { type: 'event_callback', event: { type: 3 } }, src).eventType).toBe('event_callback');
    expect(scheme.identify(input({}, BODY, AT), undefined, src)).toEqual({
      deliveryId: bodyHash(Buffer.from(BODY)),
      eventType: undefined,
    });
  });
});
