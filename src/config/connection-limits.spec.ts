/** The connection keys (`limits.anonymousConnections`, `limits.connectionsPerIp`, `server.*`): defaults and validation. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './app-config.js';

const dir = mkdtempSync(join(tmpdir(), 'hs-conn-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(file: Record<string, unknown>) {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(file));
  return loadConfig({ HOOKSTREAM_CONFIG: path });
}

describe('limits.anonymousConnections / limits.connectionsPerIp', () => {
  it('default to a fifth of connectionsPerProcess and 1000', () => {
    expect(load({}).limits).toMatchObject({ anonymousConnections: 10_000, connectionsPerIp: 1000 });
    expect(load({ limits: { connectionsPerProcess: 100 } }).limits.anonymousConnections).toBe(20);
    expect(load({ limits: { connectionsPerProcess: 1 } }).limits.anonymousConnections).toBe(1);
  });

  it('take explicit values; 0 anonymous connections turns anonymous clients away', () => {
    expect(load({ limits: { anonymousConnections: 0, connectionsPerIp: 5 } }).limits).toMatchObject({
      anonymousConnections: 0,
      connectionsPerIp: 5,
    });
  });

  it.each([[-1], [1.5], ['10']])('refuse %p', (v) => {
    expect(() => load({ limits: { anonymousConnections: v } })).toThrow(ConfigError);
    expect(() => load({ limits: { connectionsPerIp: v } })).toThrow(ConfigError);
  });

  it('refuse 0 connections per address', () => {
    expect(() => load({ limits: { connectionsPerIp: 0 } })).toThrow(/connectionsPerIp/);
  });
});

describe('server.trustedProxyHeader / server.allowedOrigins', () => {
  it('are unset by default: the socket address counts, and any origin may connect', () => {
    expect(load({}).server).toEqual({ trustedProxyHeader: undefined, allowedOrigins: undefined });
  });

  it('keep a header name (lower-cased) and a list of origins', () => {
    const server = load({
      server: {
        trustedProxyHeader: 'X-Forwarded-For',
        allowedOrigins: ['https://App.example.com', 'http://localhost:8080'],
      },
    }).server;
    expect(server).toEqual({
      trustedProxyHeader: 'x-forwarded-for',
      allowedOrigins: ['https://app.example.com', 'http://localhost:8080'],
    });
  });

  it.each([
    [{ trustedProxyHeader: 'X Forwarded' }, /server\.trustedProxyHeader/],
    [{ allowedOrigins: ['app.example.com'] }, /server\.allowedOrigins/],
    [{ allowedOrigins: ['https://app.example.com/path'] }, /server\.allowedOrigins/],
    [{ allowedOrigins: ['*'] }, /server\.allowedOrigins/],
    [{ allowedOrigins: 'https://app.example.com' }, /server\.allowedOrigins/],
  ])('refuse %j', (server, message) => {
    expect(() => load({ server })).toThrow(message);
  });
});
