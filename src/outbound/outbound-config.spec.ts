import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../config/app-config.js';

const SECRET = 'whsec_' + Buffer.alloc(24, 7).toString('base64');

function load(file: Record<string, unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'hs-outbound-config-'));
  const path = join(dir, 'hookstream.json');
  writeFileSync(path, JSON.stringify(file));
  return loadConfig({ HOOKSTREAM_CONFIG: path });
}

function problems(file: Record<string, unknown>): string[] {
  try {
    load(file);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('delivery and endpoints config', () => {
  it('has the documented defaults', () => {
    const c = load({});
    expect(c.delivery).toEqual({
      timeoutMs: 15_000,
      retryScheduleMs: [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000],
      jitter: 0.2,
      disableAfterMs: 5 * 86_400_000,
      secretGraceMs: 86_400_000,
      attemptRetentionMs: 7 * 86_400_000,
      allowPrivateNetworks: false,
    });
    expect(c.endpoints).toEqual([]);
  });

  it('reads a short schedule, api key grants and a declared endpoint', () => {
    const c = load({
      delivery: { retrySchedule: ['200ms', '400ms'], timeout: '2s', jitter: 0, allowPrivateNetworks: true },
      auth: {
        apiKeys: [
          { id: 'svc', key: 'k'.repeat(20), subscribe: ['events.>'], endpoints: true },
          { id: 'ops', key: 'o'.repeat(20), admin: true },
        ],
      },
      endpoints: [
        { id: 'audit', url: 'http://127.0.0.1:9/x', patterns: ['events.>'], secret: SECRET, ordering: 'fifo' },
      ],
    });
    expect(c.delivery).toMatchObject({ retryScheduleMs: [200, 400], timeoutMs: 2000, jitter: 0 });
    expect(c.auth.apiKeys.map((k) => [k.id, k.endpoints, k.admin])).toEqual([
      ['svc', true, false],
      ['ops', false, true],
    ]);
    expect(c.endpoints[0]).toMatchObject({
      id: 'audit',
      ordering: 'fifo',
      maxInFlight: 1,
      from: 'latest',
      headers: {},
    });
  });

  it('lists every bad endpoint field', () => {
    const p = problems({
      endpoints: [
        { id: 'a', url: 'http://127.0.0.1/x', patterns: ['events.>'], secret: SECRET },
        {
          id: 'a',
          url: 'ftp://x',
          patterns: ['events.>.x'],
          secret: 'nope',
          from: 'yesterday',
          headers: { 'webhook-id': 'x' },
        },
      ],
    }).join('\n');
    expect(p).toMatch(/endpoints\[0\]\.url: .*private/);
    expect(p).toMatch(/endpoints\[1\]\.id: "a" is configured twice/);
    expect(p).toMatch(/endpoints\[1\]\.url/);
    expect(p).toMatch(/endpoints\[1\]\.patterns/);
    expect(p).toMatch(/endpoints\[1\]\.secret/);
    expect(p).toMatch(/endpoints\[1\]\.from/);
    expect(p).toMatch(/endpoints\[1\]\.headers/);
  });

  it('refuses a bad schedule', () => {
    expect(problems({ delivery: { retrySchedule: ['5s', 'soon'] } }).join('\n')).toMatch(/retrySchedule/);
    expect(problems({ delivery: { jitter: 2 } }).join('\n')).toMatch(/jitter/);
  });
});
