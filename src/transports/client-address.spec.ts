import { describe, expect, it } from '@jest/globals';
import { clientAddress, originAllowed } from './client-address.js';

describe('clientAddress', () => {
  it('is the socket address when no proxy header is trusted, whatever the client wrote in headers', () => {
    expect(clientAddress('10.0.0.7', { 'x-forwarded-for': '1.2.3.4' }, undefined)).toBe('10.0.0.7');
  });

  it('is the last entry of the trusted header: the one the proxy appended itself', () => {
    const headers = { 'x-forwarded-for': 'spoofed-by-client, 9.9.9.9,  203.0.113.5 ' };
    expect(clientAddress('10.0.0.1', headers, 'x-forwarded-for')).toBe('203.0.113.5');
    expect(clientAddress('10.0.0.1', { 'x-real-ip': '203.0.113.6' }, 'x-real-ip')).toBe('203.0.113.6');
  });

  it('falls back to the socket address when the trusted header is missing or empty', () => {
    expect(clientAddress('10.0.0.1', {}, 'x-forwarded-for')).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', { 'x-forwarded-for': ' , ' }, 'x-forwarded-for')).toBe('10.0.0.1');
  });

  it('counts an IPv4 client on a dual-stack socket under its IPv4 form, and IPv6 in one case', () => {
    expect(clientAddress('::ffff:127.0.0.1', {}, undefined)).toBe('127.0.0.1');
    expect(clientAddress('2001:DB8::1', {}, undefined)).toBe('2001:db8::1');
    expect(clientAddress(undefined, {}, undefined)).toBe('unknown');
  });
});

describe('originAllowed', () => {
  it('allows every origin without an allow-list', () => {
    expect(originAllowed('https://anything.example', undefined)).toBe(true);
  });

  it('with an allow-list, allows listed origins (any case) and requests without Origin, refuses the rest', () => {
    const list = ['https://app.example.com'];
    expect(originAllowed('https://app.example.com', list)).toBe(true);
    expect(originAllowed('HTTPS://APP.EXAMPLE.COM', list)).toBe(true);
    expect(originAllowed(undefined, list)).toBe(true);
    expect(originAllowed('https://evil.example', list)).toBe(false);
    expect(originAllowed('https://app.example.com.evil.example', list)).toBe(false);
    expect(originAllowed('null', list)).toBe(false);
    expect(originAllowed(['https://app.example.com', 'https://evil.example'], list)).toBe(false);
  });
});
