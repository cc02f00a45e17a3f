import { describe, expect, it } from '@jest/globals';
import { checkHeaders, parseEndpointUrl } from './endpoint-rules.js';
import {
  BlockedAddressError,
  firstBlockedAddress,
  guardedLookup,
  isBlockedAddress,
  type Resolver,
} from './ssrf-guard.js';

describe('isBlockedAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '100.127.255.255',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:8.8.8.8',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'fe80::1%eth0',
    'ff02::1',
    'not an address',
  ])('blocks %s', (ip) => expect(isBlockedAddress(ip)).toBe(true));

  it.each(['8.8.8.8', '93.184.216.34', '100.128.0.1', '172.32.0.1', '2606:4700::1111', '2001:4860:4860::8888'])(
    'allows %s',
    (ip) => expect(isBlockedAddress(ip)).toBe(false),
  );
});

describe('parseEndpointUrl', () => {
  it.each([
    'http://127.0.0.1/hook',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://0x7f000001/',
    'http://017700000001/',
    'http://127.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.64.1.1/',
    'http://0.0.0.0/',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://10.0.0.1:8080/x',
  ])('refuses the private literal %s unless private networks are allowed', (url) => {
    expect(parseEndpointUrl(url, false)).toMatchObject({ ok: false });
    expect(parseEndpointUrl(url, true)).toMatchObject({ ok: true });
  });

  it.each([
    ['ftp://example.com/', /http or https/],
    ['http://user:pass@example.com/', /user info/],
    ['not a url', /valid absolute URL/],
    ['', /non-empty/],
    ['https://example.com/' + 'a'.repeat(2048), /longer than 2048/],
    ['javascript:alert(1)', /http or https/],
  ])('refuses %s', (url, reason) => {
    const r = parseEndpointUrl(url, true);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('accepts a public https URL', () => {
    expect(parseEndpointUrl('https://hooks.example.com/in?x=1', false)).toMatchObject({ ok: true });
  });
});

describe('firstBlockedAddress (create-time check)', () => {
  const resolver: Resolver = async (host) =>
    host === 'public.test'
      ? [{ address: '93.184.216.34', family: 4 }]
      : [
          { address: '93.184.216.34', family: 4 },
          { address: '10.0.0.5', family: 4 },
        ];

  it('passes a host whose every answer is public', async () => {
    await expect(firstBlockedAddress('public.test', resolver)).resolves.toBeNull();
  });

  it('names the blocked answer when any answer is private', async () => {
    await expect(firstBlockedAddress('mixed.test', resolver)).resolves.toBe('10.0.0.5');
  });

  it('checks a literal without resolving', async () => {
    await expect(firstBlockedAddress('[::1]', resolver)).resolves.toBe('::1');
  });
});

describe('guardedLookup (connect-time check)', () => {
  const call = (lookup: ReturnType<typeof guardedLookup>, host: string, options: object) =>
    new Promise<{ err: Error | null; address?: unknown; family?: unknown }>((resolve) =>
      lookup(
        host,
        options as never,
        ((err: Error | null, address?: unknown, family?: unknown) => resolve({ err, address, family })) as never,
      ),
    );
  const rebinding: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];

  it('fails the connection with BlockedAddressError when the name resolves to a blocked address', async () => {
    const r = await call(guardedLookup(rebinding, false), 'rebind.test', {});
    expect(r.err).toBeInstanceOf(BlockedAddressError);
  });

  it('lets it through when private networks are allowed, in both callback forms', async () => {
    expect(await call(guardedLookup(rebinding, true), 'rebind.test', {})).toMatchObject({
      err: null,
      address: '127.0.0.1',
      family: 4,
    });
    expect(await call(guardedLookup(rebinding, true), 'rebind.test', { all: true })).toMatchObject({
      err: null,
      address: [{ address: '127.0.0.1', family: 4 }],
    });
  });
});

describe('checkHeaders', () => {
  it('keeps custom headers, lower-cased', () => {
    expect(checkHeaders({ 'X-Tenant': 'a' })).toEqual({ ok: true, headers: { 'x-tenant': 'a' } });
  });
  it.each([
    [{ 'webhook-id': 'x' }],
    [{ 'User-Agent': 'x' }],
    [{ 'Hookstream-Attempt': '9' }],
    [{ 'x-a': 'line\r\nbreak' }],
    [{ 'bad name': 'x' }],
    [{ 'x-n': 5 }],
    [[1]],
    ['text'],
  ])('refuses %p', (h) => expect(checkHeaders(h).ok).toBe(false));
});
