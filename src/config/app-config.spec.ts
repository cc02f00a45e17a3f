import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './app-config.js';
import { parseDuration, parseSize } from './units.js';
import { parse as parseYaml } from 'yaml';
import { largestMessageBytes } from '../store/jetstream/jetstream-connection.js';

// Secrets long enough for the secret policy (secret-policy.ts); the weak ones are tested below.
const ACME = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SECOND_ACME = 'whsec_c2Vjb25kLWFjbWUta2V5LTAxMjM0NTY3ODk=';
const HMAC = 'custom-hmac-secret-0123';
const JWT = 'config-spec-jwt-secret-0123456789-abcdef';

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

  it.each(['', 'abc', '5 weeks', '-1s', '1e3s', null, {}])('rejects duration %p', (text) =>
    expect(parseDuration(text)).toBeNull(),
  );

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
    secrets: ["\${ACME_SECRET}", ${SECOND_ACME}]
    tolerance: 2m
  - name: custom
    verifier: hmac
    header: X-Signature
    prefix: "sha256="
    secrets: [${HMAC}]
auth:
  jwt: { secret: "\${JWT_SECRET}" }
`);
    const c = loadConfig({
      HOOKSTREAM_CONFIG: file,
      ACME_SECRET: ACME,
      JWT_SECRET: JWT,
      PORT: '8080',
      NATS_URL: 'nats://a:4222,nats://b:4222',
    });
    expect(c.port).toBe(8080);
    expect(c.natsUrl).toBe('nats://a:4222,nats://b:4222');
    expect(c.stream.maxAgeMs).toBe(2 * 86_400_000);
    expect(c.stream.maxBytes).toBe(524_288);
    expect(c.sources.get('acme')).toMatchObject({
      secrets: [ACME, SECOND_ACME],
      toleranceMs: 120_000,
      defaultType: 'webhook',
    });
    expect(c.sources.get('custom')).toMatchObject({
      header: 'x-signature',
      algorithm: 'sha256',
      encoding: 'hex',
      prefix: 'sha256=',
    });
    expect(c.sources.get('custom')?.secrets).toEqual([HMAC]);
    expect(c.auth.jwt?.secret).toBe(JWT);
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
    const fixed = problemsOf(() =>
      loadConfig({ HOOKSTREAM_CONFIG: file, PORT: 'http', LOG_LEVEL: 'loud', MISSING_VAR: 'x' }),
    );
    const all = fixed.join('\n');
    for (const needle of [
      'PORT',
      'LOG_LEVEL',
      'stream.maxAge',
      'stream.replicas',
      'ingest.maxBodyBytes',
      'sources[0].name',
      'sources[0].verifier',
      'sources[0].secrets',
      'auth.apiKeys[0].key',
    ]) {
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

describe('secret hygiene', () => {
  const sources = (list: [string, string, string][]) =>
    list.map(([name, verifier, secret]) => ({
      name,
      verifier,
      secrets: [secret],
      ...(verifier === 'hmac' ? { header: 'X-Sig' } : {}),
    }));

  it('refuses weak and placeholder secrets, all in one list, without quoting them', () => {
    const weak: [string, string, string][] = [
      ['sw-empty', 'standard-webhooks', 'whsec_'],
      ['sw-not-base64', 'standard-webhooks', 'whsec_this is not base64!'],
      ['sw-short', 'standard-webhooks', 'whsec_' + Buffer.alloc(23, 7).toString('base64')],
      ['gh', 'github', 'fifteen-bytes!!'],
      ['shop', 'shopify', 'short'],
      ['sl', 'slack', 'slack-secret'],
      ['mac', 'hmac', 'raw-hmac-secret'],
      ['st', 'stripe', 'whsec_0123456789abcde'],
      ['st-placeholder', 'stripe', 'whsec_change_me'],
      ['gh-placeholder', 'github', 'change-me'],
      ['acme', 'standard-webhooks', 'whsec_ZGVtby1zZWNyZXQtZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9u'],
    ];
    const file = withFile(
      JSON.stringify({
        stream: { replicas: 9 },
        sources: sources(weak),
        auth: {
          jwt: { secret: 'change-me-to-a-long-random-string' },
          apiKeys: [{ id: 'billing', key: 'change-me-billing-api-key' }],
        },
      }),
      'c.json',
    );
    const problems = problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: file }));
    const text = problems.join('\n');
    expect(text).toContain('stream.replicas'); // listed with the schema problems
    for (const [i] of weak.entries()) expect(text).toContain(`sources[${i}].secrets[0]`);
    expect(text).toContain('decodes to 0 bytes');
    expect(text).toContain('is not whsec_ followed by base64');
    expect(text).toContain('decodes to 23 bytes; a Standard Webhooks key needs at least 24');
    expect(text).toContain('is 15 bytes; a github secret needs at least 16');
    expect(text).toContain('is 15 bytes after whsec_; a stripe secret needs at least 16');
    expect(text).toContain('sources[8].secrets[0] (source "st-placeholder"): is a placeholder');
    expect(text).toContain('public demo secret');
    expect(text).toContain('auth.jwt.secret: is a placeholder');
    expect(text).toContain('auth.apiKeys[0].key: is a placeholder');
    for (const [, , secret] of weak.filter(([, , s]) => s.length > 'whsec_'.length)) expect(text).not.toContain(secret);
  });

  it('refuses an HS256 secret under 32 bytes and lists weak secrets with semantic problems', () => {
    const file = withFile(
      JSON.stringify({
        stream: { maxAge: '1m', duplicateWindow: '2m' },
        auth: { jwt: { secret: 'a'.repeat(31) } },
      }),
      'c.json',
    );
    const text = problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: file })).join('\n');
    expect(text).toContain('auth.jwt.secret: is 31 bytes; an HS256 secret needs at least 32');
    expect(text).toContain('duplicateWindow must not exceed');
  });

  it('accepts secrets of the minimum lengths, and the demo secret on the console demo source only', () => {
    const ok: [string, string, string][] = [
      ['sw', 'standard-webhooks', 'whsec_' + Buffer.alloc(24, 7).toString('base64')],
      ['sw-bare', 'standard-webhooks', Buffer.alloc(32, 9).toString('base64')],
      ['gh', 'github', 'sixteen-bytes!!!'],
      ['st', 'stripe', 'whsec_0123456789abcdef'],
      ['demo', 'standard-webhooks', 'whsec_ZGVtby1zZWNyZXQtZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9u'],
    ];
    const file = withFile(
      JSON.stringify({
        sources: sources(ok).map((s) => (s.name === 'demo' ? { ...s, demo: true } : s)),
        auth: { jwt: { secret: 'x'.repeat(32) } },
        console: { demoSource: 'demo' },
      }),
      'c.json',
    );
    expect([...loadConfig({ HOOKSTREAM_CONFIG: file }).sources.keys()]).toEqual(ok.map(([name]) => name));
  });

  it('starts on config/demo.yaml, and on config/example.yaml only with real secrets from the environment', () => {
    expect(loadConfig({ HOOKSTREAM_CONFIG: 'config/demo.yaml' }).sources.get('demo')?.verifier).toBe(
      'standard-webhooks',
    );
    const real = {
      ACME_WEBHOOK_SECRET: 'whsec_' + Buffer.alloc(32, 1).toString('base64'),
      STRIPE_WEBHOOK_SECRET: 'whsec_live0123456789abcdefghij',
      GITHUB_WEBHOOK_SECRET: 'a-github-secret-0123456789',
      JWT_SECRET: 'a-jwt-secret-of-more-than-32-bytes-0123456789',
      BILLING_API_KEY: 'billing-api-key-0123456789abcdef',
    };
    expect(loadConfig({ HOOKSTREAM_CONFIG: 'config/example.yaml', ...real }).sources.size).toBe(3);
    const shipped = {
      ACME_WEBHOOK_SECRET: 'whsec_ZGVtby1zZWNyZXQtZG8tbm90LXVzZS1pbi1wcm9kdWN0aW9u',
      STRIPE_WEBHOOK_SECRET: 'whsec_change_me',
      GITHUB_WEBHOOK_SECRET: 'change-me',
      JWT_SECRET: 'change-me-to-a-long-random-string',
      BILLING_API_KEY: 'change-me-billing-api-key',
    };
    const problems = problemsOf(() => loadConfig({ HOOKSTREAM_CONFIG: 'config/example.yaml', ...shipped }));
    expect(problems).toHaveLength(5);
  });
});

describe('${VAR} in parsed values', () => {
  const tricky = 'a #not-a-comment "quoted" \'single\'\nsecond line: {x: [1]} ${NOT_A_VAR_EITHER}';

  it.each([
    ['an unquoted value', 'auth:\n  jwt:\n    secret: ${JWT_SECRET}\n'],
    ['a double-quoted value', 'auth:\n  jwt:\n    secret: "${JWT_SECRET}"\n'],
    ['a flow mapping', 'auth: { jwt: { secret: "${JWT_SECRET}" } }\n'],
  ])('a value with " #", quotes and a newline arrives intact in %s', (_name, yaml) => {
    const c = loadConfig({ HOOKSTREAM_CONFIG: withFile(yaml), JWT_SECRET: tricky });
    expect(c.auth.jwt?.secret).toBe(tricky);
  });

  it('in JSON files too', () => {
    const file = withFile(JSON.stringify({ auth: { jwt: { secret: 'k:${JWT_SECRET}' } } }), 'c.json');
    expect(loadConfig({ HOOKSTREAM_CONFIG: file, JWT_SECRET: tricky }).auth.jwt?.secret).toBe(`k:${tricky}`);
  });

  it('ignores references in comments; an unquoted whole reference to a number is a number, a quoted one a string', () => {
    const file = withFile('# ${NOT_SET} is documented here\nstream:\n  replicas: ${REPLICAS}\n  name: "${NAME}"\n');
    const c = loadConfig({ HOOKSTREAM_CONFIG: file, REPLICAS: '3', NAME: '123' });
    expect(c.stream.replicas).toBe(3);
    expect(c.stream.name).toBe('123');
  });

  it('says how to fix an unquoted reference inside [ ]', () => {
    const text = problemsOf(() =>
      loadConfig({ HOOKSTREAM_CONFIG: withFile('sources: [{ name: a, secrets: [${X}] }]\n'), X: 'y' }),
    ).join();
    expect(text).toContain('cannot parse');
    expect(text).toContain('in quotes');
  });
});

describe('NATS connection settings', () => {
  const load = (env: Record<string, string>) => loadConfig({ HOOKSTREAM_CONFIG: withFile(''), ...env });
  const natsProblems = (env: Record<string, string>) => problemsOf(() => load(env)).join('\n');

  it('takes user info out of NATS_URL: the servers left are safe to log', () => {
    const c = load({
      NATS_URL: 'nats://hook%40stream:p%40ss%3Aw%2Frd@127.0.0.1:4222, nats://hook%40stream:p%40ss%3Aw%2Frd@h2:4223',
    });
    expect(c.natsUrl).toBe('nats://127.0.0.1:4222,nats://h2:4223');
    expect(c.nats).toEqual({
      servers: ['nats://127.0.0.1:4222', 'nats://h2:4223'],
      auth: { kind: 'user', user: 'hook@stream', pass: 'p@ss:w/rd' },
      tls: undefined,
    });
    expect(load({ NATS_URL: 'nats://s3cr3t-token@h:4222' }).nats?.auth).toEqual({
      kind: 'token',
      token: 's3cr3t-token',
    });
  });

  it('reads NATS_USER/NATS_PASSWORD, NATS_TOKEN, and TLS for tls:// servers', () => {
    expect(load({ NATS_URL: 'h:4222', NATS_USER: 'u', NATS_PASSWORD: 'pw' }).nats).toEqual({
      servers: ['nats://h:4222'],
      auth: { kind: 'user', user: 'u', pass: 'pw' },
      tls: undefined,
    });
    expect(load({ NATS_URL: 'nats://h:4222', NATS_TOKEN: 't' }).nats?.auth).toEqual({ kind: 'token', token: 't' });
    expect(load({ NATS_URL: 'tls://h:4222' }).nats?.tls).toEqual({});
    expect(load({ NATS_URL: 'nats://h:4222', NATS_USER: '', NATS_TOKEN: '' }).nats?.auth).toEqual({ kind: 'none' });
  });

  it('reads an NKey seed file and a creds file, and the TLS files', () => {
    const seed = 'SUACSSL3UAHUDXKFSNVUZRF5UHPMWZ6BFDTJ7M6USDXIEDNPPQYYYCU3VY';
    const jwt = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVQSJ9.c2ln';
    const nkey = withFile(`${seed}\n`, 'user.nk');
    const creds = withFile(
      `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
        `************************* IMPORTANT *************************\n\n` +
        `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
      'user.creds',
    );
    const ca = withFile('ca', 'ca.pem');
    expect(load({ NATS_URL: 'h', NATS_NKEY: nkey }).nats?.auth).toEqual({
      kind: 'nkey',
      seed: new TextEncoder().encode(seed),
    });
    expect(load({ NATS_URL: 'h', NATS_CREDS: creds }).nats?.auth.kind).toBe('creds');
    expect(load({ NATS_URL: 'h', NATS_TLS_CA: ca, NATS_TLS_CERT: ca, NATS_TLS_KEY: ca }).nats?.tls).toEqual({
      caFile: ca,
      certFile: ca,
      keyFile: ca,
    });
  });

  it('lists every NATS problem without quoting a password', () => {
    const text = natsProblems({
      NATS_URL: 'nats://u:hunter2-password@h:4222,ws://h:80,nats://other:pw@h:4224',
      NATS_TOKEN: 'tok',
      NATS_PASSWORD: 'lonely-password',
      NATS_CREDS: '/nonexistent/user.creds',
      NATS_TLS_CERT: withFile('c', 'c.pem'),
    });
    expect(text).toContain('scheme "ws" is not supported');
    expect(text).toContain('different credentials');
    expect(text).toContain('NATS_PASSWORD is set without NATS_USER');
    expect(text).toContain('set only one of user info in NATS_URL, NATS_TOKEN, NATS_CREDS');
    expect(text).toContain('NATS_TLS_CERT and NATS_TLS_KEY go together');
    expect(text).not.toMatch(/hunter2|lonely-password|tok\b|other:pw/);
    expect(natsProblems({ NATS_URL: 'h', NATS_NKEY: withFile('not a seed', 'x.nk') })).toContain('NATS_NKEY');
    expect(natsProblems({ NATS_URL: ' , ', PORT: 'x' })).toContain('NATS_URL: names no server');
    expect(natsProblems({ NATS_URL: 'h', NATS_CREDS: withFile('junk', 'x.creds') })).toContain(
      'not a NATS credentials file',
    );
    expect(natsProblems({ NATS_URL: 'h', NATS_TLS_CA: '/nonexistent/ca.pem' })).toContain('NATS_TLS_CA: cannot read');
    expect(natsProblems({ NATS_URL: 'nats://u:qx@zy@h:4222' })).not.toMatch(/qx|zy/);
    // An unencoded `,` in a password splits the list: neither half may be printed or used as a server.
    const split = natsProblems({ NATS_URL: 'nats://u:qx,zy-word@h:4222' });
    expect(split).toContain('server 1 is not a URL');
    expect(split).not.toMatch(/qx|zy/);
  });
});

describe('docker-compose.yml', () => {
  const compose = parseYaml(readFileSync('docker-compose.yml', 'utf8')) as {
    services: Record<string, { environment?: Record<string, string>; ports?: string[]; command?: string[] }>;
  };
  const natsConf = readFileSync('config/nats-server.conf', 'utf8');

  it('ships no secret: every one is required from the environment', () => {
    const env = compose.services.hookstream.environment ?? {};
    const secrets = [
      'NATS_PASSWORD',
      'ACME_WEBHOOK_SECRET',
      'STRIPE_WEBHOOK_SECRET',
      'GITHUB_WEBHOOK_SECRET',
      'JWT_SECRET',
      'BILLING_API_KEY',
    ];
    for (const name of secrets) expect(env[name]).toMatch(new RegExp(`^\\$\\{${name}:\\?.+\\}$`));
    expect(compose.services.nats.environment?.NATS_PASSWORD).toMatch(/^\$\{NATS_PASSWORD:\?.+\}$/);
  });

  it('publishes NATS on loopback only, and NATS asks every client for the password', () => {
    for (const port of compose.services.nats.ports ?? []) expect(port).toMatch(/^127\.0\.0\.1:/);
    expect(compose.services.nats.command).toEqual(['-c', '/etc/nats/nats-server.conf']);
    expect(natsConf).toMatch(/authorization\s*\{\s*user: hookstream\s*password: \$NATS_PASSWORD\s*\}/);
  });

  it("NATS's max_payload holds the largest event of config/example.yaml's ingest.maxBodyBytes", () => {
    const maxPayload = parseSize(/^max_payload: (\S+)$/m.exec(natsConf)?.[1])!;
    const env = {
      ACME_WEBHOOK_SECRET: ACME,
      STRIPE_WEBHOOK_SECRET: 'whsec_0123456789abcdef',
      GITHUB_WEBHOOK_SECRET: HMAC,
      JWT_SECRET: JWT,
      BILLING_API_KEY: HMAC,
    };
    const example = loadConfig({ HOOKSTREAM_CONFIG: 'config/example.yaml', ...env });
    expect(maxPayload).toBeGreaterThanOrEqual(largestMessageBytes(example));
  });
});
