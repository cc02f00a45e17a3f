import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './app-config.js';
import { parseDuration, parseSize } from './units.js';

function withFile(content: string, name = 'hookstream.yaml'): string {
  const dir = mkdtempSync(join(tmpdir(), 'hs-config-'));
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('units', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['72h', 259_200_000],
    ['7d', 604_800_000],
    ['1.5s', 1500],
    [250, 250],
  ])('duration %p = %p ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 'abc', '5 weeks', '-1s', '1e3s', null, {}])('rejects duration %p', (text) => expect(parseDuration(text)).toBeNull());

  it.each([
    ['512KB', 524_288],
    ['1MB', 1_048_576],
    ['10GB', 10 * 1024 ** 3],
    ['64', 64],
    ['2MiB', 2 * 1024 ** 2],
  ])('size %p = %p bytes', (text, bytes) => expect(parseSize(text)).toBe(bytes));

  it.each(['1XB', 'MB', '-5KB', '1.2.3MB'])('rejects size %p', (text) => expect(parseSize(text)).toBeNull());
});

describe('loadConfig', () => {
  it('applies the documented defaults with no file', () => {
    const c = loadConfig({ HOOKSTREAM_CONFIG: withFile('') });
    expect(c.port).toBe(3000);
    expect(c.host).toBe('0.0.0.0');
    expect(c.natsUrl).toBeUndefined();
    expect(c.stream).toEqual({
      name: 'EVENTS',
      subjectPrefix: 'events',
      maxAgeMs: 7 * 86_400_000,
      maxBytes: 10 * 1024 ** 3,
      replicas: 1,
      duplicateWindowMs: 120_000,
    });
    expect(c.idempotency.ttlMs).toBe(72 * 3_600_000);
    expect(c.ingest.maxBodyBytes).toBe(1024 ** 2);
    expect(c.ingest.bodyTimeoutMs).toBe(30_000);
    expect(c.ingest.maxJsonDepth).toBe(100);
    expect(c.limits.subscriptionsPerConnection).toBe(100);
    expect(c.limits.patternsPerSubscription).toBe(32);
    expect(c.limits.connectionsPerProcess).toBe(50_000);
    expect(c.limits.replaysPerConnection).toBe(2);
    expect(c.limits.clientBufferBytes).toBe(1024 ** 2);
    expect(c.limits.slowConsumerTimeoutMs).toBe(30_000);
    expect(c.auth.anonymous.subscribe).toEqual([]);
  });

  it('reads the replay fairness and slow-consumer limits, and refuses a byte budget under 64KB', () => {
    const file = withFile('limits: { replaysPerConnection: 3, clientBufferBytes: 256KB, slowConsumerTimeout: 5s }');
    const c = loadConfig({ HOOKSTREAM_CONFIG: file });
    expect(c.limits).toMatchObject({
      replaysPerConnection: 3,
      clientBufferBytes: 262_144,
      slowConsumerTimeoutMs: 5000,
    });
    const bad = withFile('limits: { replaysPerConnection: 0, slowConsumerTimeout: soon }');
    const text = problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: bad })).join('\n');
    expect(text).toContain('replaysPerConnection');
    expect(text).toContain('slowConsumerTimeout');
    const small = withFile('limits: { clientBufferBytes: 1KB }');
    expect(problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: small }))).toEqual([
      'limits.clientBufferBytes must be at least 64KB',
    ]);
  });

  it('reads YAML with ${VAR} interpolation, durations and sizes', () => {
    const file = withFile(`
stream: { maxAge: 2d, maxBytes: 512KB, duplicateWindow: 30s }
sources:
  - name: acme
    verifier: standard-webhooks
    secrets: ["\${ACME_SECRET}", second]
    tolerance: 2m
  - name: custom
    verifier: hmac
    header: X-Signature
    prefix: "sha256="
    secrets: [s]
auth:
  jwt: { secret: "\${JWT_SECRET}" }
`);
    const c = loadConfig({ HOOKSTREAM_CONFIG: file, ACME_SECRET: 'whsec_abc', JWT_SECRET: 'j', PORT: '8080', NATS_URL: 'nats://a:4222,nats://b:4222' });
    expect(c.port).toBe(8080);
    expect(c.natsUrl).toBe('nats://a:4222,nats://b:4222');
    expect(c.stream.maxAgeMs).toBe(2 * 86_400_000);
    expect(c.stream.maxBytes).toBe(524_288);
    expect(c.sources.get('acme')).toMatchObject({ secrets: ['whsec_abc', 'second'], toleranceMs: 120_000, defaultType: 'webhook' });
    expect(c.sources.get('custom')).toMatchObject({ header: 'x-signature', algorithm: 'sha256', encoding: 'hex', prefix: 'sha256=' });
    expect(c.auth.jwt?.secret).toBe('j');
  });

  it('reads JSON files', () => {
    const c = loadConfig({ HOOKSTREAM_CONFIG: withFile('{"stream":{"name":"X"}}', 'c.json') });
    expect(c.stream.name).toBe('X');
  });

  it('lists every problem at once', () => {
    const file = withFile(`
stream: { maxAge: soon, replicas: 9 }
ingest: { maxBodyBytes: lots }
sources:
  - name: "bad name"
    verifier: carrier-pigeon
    secrets: []
  - name: custom
    verifier: hmac
    secrets: [x]
auth:
  jwt: { secret: a, publicKey: b }
  apiKeys:
    - { id: k, key: short }
extra: \${MISSING_VAR}
`);
    const problems = problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: file, PORT: 'http', LOG_LEVEL: 'loud' }));
    const text = problems.join('\n');
    for (const needle of ['MISSING_VAR']) expect(text).toContain(needle);
    // Interpolation problems stop before schema validation; fix that one and the rest are all listed.
    const fixed = problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: file, PORT: 'http', LOG_LEVEL: 'loud', MISSING_VAR: 'x' }));
    const all = fixed.join('\n');
    for (const needle of ['PORT', 'LOG_LEVEL', 'stream.maxAge', 'stream.replicas', 'ingest.maxBodyBytes', 'sources[0].name', 'sources[0].verifier', 'sources[0].secrets', 'auth.apiKeys[0].key']) {
      expect(all).toContain(needle);
    }
  });

  it('refuses semantic conflicts', () => {
    const file = withFile(`
stream: { maxAge: 1m, duplicateWindow: 2m }
sources:
  - { name: a, verifier: hmac, secrets: [x] }
  - { name: a, verifier: github, secrets: [y] }
auth:
  jwt: { secret: a, publicKey: b }
  apiKeys:
    - { id: k1, key: 0123456789abcdef, publish: ["events..x"], subscribe: ["events.>.x"] }
  anonymous: { subscribe: ["*.>", "a b"] }
`);
    const all = problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: file })).join('\n');
    expect(all).toContain('duplicateWindow must not exceed');
    expect(all).toContain('configured twice');
    expect(all).toContain('hmac verifier needs a header');
    expect(all).toContain('exactly one of secret and publicKey');
    expect(all).toContain('auth.apiKeys[0].publish: "events..x" is not a valid subject pattern');
    expect(all).toContain('auth.apiKeys[0].subscribe: "events.>.x"');
    expect(all).toContain('auth.anonymous.subscribe: "a b"');
    expect(all).not.toContain('"*.>"');
  });

  it('says which file cannot be read or parsed', () => {
    expect(problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: '/nonexistent/h.yaml' })).join()).toContain('cannot read');
    expect(problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: withFile('a: [1,') })).join()).toContain('cannot parse');
    expect(problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: withFile('- 1\n- 2') })).join()).toContain('mapping');
  });
});
