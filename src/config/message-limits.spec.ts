/** The Socket.IO message budget keys (`limits.messagesPerSecond`, `limits.messageBurst`): defaults and validation. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './app-config.js';

const dir = mkdtempSync(join(tmpdir(), 'hs-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(limits: Record<string, unknown>) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ limits }));
  return loadConfig({ HOOKSTREAM_CONFIG: file });
}

describe('limits.messagesPerSecond / limits.messageBurst', () => {
  it('default to 50 per second and a burst of 200', () => {
    expect(load({}).limits).toMatchObject({ messagesPerSecond: 50, messageBurst: 200 });
  });

  it('derive the default burst from subscriptionsPerConnection, so a client can resubscribe everything at once', () => {
    expect(load({ subscriptionsPerConnection: 500 }).limits.messageBurst).toBe(1000);
  });

  it('take explicit values', () => {
    expect(load({ messagesPerSecond: 5, messageBurst: 150 }).limits).toMatchObject({
      messagesPerSecond: 5,
      messageBurst: 150,
    });
  });

  it('refuse a burst smaller than subscriptionsPerConnection', () => {
    expect(() => load({ subscriptionsPerConnection: 100, messageBurst: 10 })).toThrow(ConfigError);
  });

  it.each([[0], [-1], [1.5], ['10']])('refuse %p as either value', (v) => {
    expect(() => load({ messagesPerSecond: v })).toThrow(ConfigError);
    expect(() => load({ messageBurst: v })).toThrow(ConfigError);
  });
});
