import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, type AppConfig, type SourceConfig } from '../config/app-config.js';
import { schemeFor } from '../ingest/verifiers/verifier.js';
import { DEMO_TYPE, signDemoWebhook } from './demo-webhook.js';

function configWith(file: Record<string, unknown>): AppConfig {
  const dir = mkdtempSync(join(tmpdir(), 'hookstream-demo-'));
  try {
    writeFileSync(join(dir, 'c.json'), JSON.stringify(file));
    return loadConfig({ HOOKSTREAM_CONFIG: join(dir, 'c.json') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const SOURCES = [
  { name: 'sw', verifier: 'standard-webhooks', secrets: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_b3RoZXItc3RhbmRhcmQtd2ViaG9va3Mta2V5LTAx'] },
  { name: 'stripe', verifier: 'stripe', secrets: ['whsec_test_secret_0123456789'] },
  { name: 'github', verifier: 'github', secrets: ["It's a Secret to Everybody"] },
  { name: 'shopify', verifier: 'shopify', secrets: ['shpss_test_secret'] },
  { name: 'slack', verifier: 'slack', secrets: ['8f742231b10e8888abcd99yyyzzz85a5'] },
  {
    name: 'hmac',
    verifier: 'hmac',
    header: 'X-Sig',
    prefix: 'sha512=',
    algorithm: 'sha512',
    encoding: 'base64',
    idHeader: 'X-Id',
    typeField: 'meta.kind',
    secrets: ['raw-hmac-secret-0123'],
  },
  { name: 'hmac-plain', verifier: 'hmac', header: 'X-Signature', secrets: ['raw-hmac-secret-0123'] },
];

describe('signDemoWebhook', () => {
  const config = configWith({ sources: SOURCES });
  const now = Date.UTC(2026, 10, 26, 17, 0, 0);

  it.each([...config.sources.values()].map((s) => [s.name, s] as [string, SourceConfig]))(
    '%s: passes its own verifier with the first secret, and carries the demo type where the scheme has one',
    (_name, source) => {
      const signed = signDemoWebhook(source, now, '6f1c2d3e-0000-4000-8000-000000000001');
      const input = { headers: signed.headers, body: signed.body, nowMs: now };
      const scheme = schemeFor(source.verifier);
      expect(scheme.verify(input, source)).toBeNull();
      // Signed with the first secret only: the others alone do not verify it.
      expect(scheme.verify(input, { ...source, secrets: source.secrets.slice(1).concat('not-the-secret') })).toBe(
        'invalid_signature',
      );
      const { eventType, deliveryId } = scheme.identify(input, JSON.parse(signed.body.toString('utf8')), source);
      if (source.name === 'hmac-plain')
        expect(deliveryId).toMatch(/^[0-9a-f]{64}$/); // no idHeader: a body hash
      else expect(deliveryId).toContain('6f1c2d3e');
      if (source.name === 'hmac-plain')
        expect(eventType).toBeUndefined(); // no typeField: the source's defaultType
      else if (source.name === 'slack') expect(eventType).toBe('console_test');
      else if (source.name === 'shopify') expect(eventType).toBe('console/test');
      else expect(eventType).toBe(DEMO_TYPE);
    },
  );

  it('is stale outside the tolerance, like any signed timestamp (it is signed with the time passed in)', () => {
    const source = config.sources.get('sw') as SourceConfig;
    const signed = signDemoWebhook(source, now, 'x');
    expect(
      schemeFor('standard-webhooks').verify(
        { headers: signed.headers, body: signed.body, nowMs: now + 3_600_000 },
        source,
      ),
    ).toBe('timestamp_out_of_tolerance');
  });
});

describe('console.demoSource config', () => {
  it('is unset by default', () => {
    expect(configWith({}).console).toEqual({ demoSource: undefined });
  });

  it('names a configured source dedicated to demos (demo: true)', () => {
    const sources = SOURCES.map((s) => (s.name === 'stripe' ? { ...s, demo: true } : s));
    expect(configWith({ sources, console: { demoSource: 'stripe' } }).console.demoSource).toBe('stripe');
  });

  it("refuses a source not marked demo: true: the button would sign that provider's events for anyone", () => {
    expect(() => configWith({ sources: SOURCES, console: { demoSource: 'stripe' } })).toThrow(
      /console\.demoSource: source "stripe" is not marked "demo: true"/,
    );
    const notBool = SOURCES.map((s) => (s.name === 'stripe' ? { ...s, demo: 'yes' } : s));
    expect(() => configWith({ sources: notBool, console: { demoSource: 'stripe' } })).toThrow(/sources\[1\]\.demo/);
  });

  it('refuses a source that is not configured, naming the key', () => {
    expect(() => configWith({ sources: SOURCES, console: { demoSource: 'nope' } })).toThrow(ConfigError);
    expect(() => configWith({ sources: SOURCES, console: { demoSource: 'nope' } })).toThrow(
      /console\.demoSource: "nope" is not a configured source/,
    );
    expect(() => configWith({ console: { demoSource: 'bad name!' } })).toThrow(/console\.demoSource/);
  });
});
