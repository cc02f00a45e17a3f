/**
 * The gateway against nats-servers that ask for credentials, speak TLS or allow only small messages: it
 * signs in with what the environment gives (user info in NATS_URL, NATS_USER/NATS_PASSWORD, NATS_TOKEN,
 * NATS_NKEY, NATS_TLS_*), becomes ready and stores an event; a wrong password or a max_payload too small for
 * ingest.maxBodyBytes keeps it unready with a log line that says why, and no log line holds a password.
 */
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, expect, it, jest } from '@jest/globals';
import { connect, credsAuthenticator, nkeyAuthenticator, nkeys, type ConnectionOptions } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { INestApplication } from '@nestjs/common';
import { pino } from 'pino';
import { createApp } from '../src/bootstrap.js';
import { largestMessageBytes } from '../src/store/jetstream/jetstream-connection.js';
import { describeWithNats, NatsServerProcess, type NatsServerOptions } from './harness/nats-server.js';
import { waitFor } from './harness/wait.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { E2E_SOURCES, post, RAW_SECRET, standardWebhook } from './support/signers.js';

jest.setTimeout(60_000);

const PASSWORD = 'pa55/w@rd:with%odd,chars';
const TOKEN = 'tok-0123456789-abcdefghij';

interface Gateway {
  url: string;
  stream: string;
  app: INestApplication;
  /** Every log line so far, as written (JSON). */
  log(): string;
}

const running: Gateway[] = [];
const servers: NatsServerProcess[] = [];
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hookstream-nats-conn-'));
});

afterEach(async () => {
  while (running.length) await running.pop()!.app.close();
  while (servers.length) await servers.pop()!.stop();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function natsServer(opts: NatsServerOptions): Promise<NatsServerProcess> {
  const server = await NatsServerProcess.start(opts);
  servers.push(server);
  return server;
}

/** An in-process gateway whose logs (level info) are kept for the test to read. */
async function gateway(env: Record<string, string>, file: Record<string, unknown> = {}): Promise<Gateway> {
  const config = testConfig({
    env,
    file: {
      stream: { name: uniqueStreamName('NC'), ...((file.stream as object) ?? {}) },
      sources: E2E_SOURCES,
      ...file,
    },
  });
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const app = await createApp(config, { logger: pino({ level: 'info' }, sink) });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const gw = { url: `http://127.0.0.1:${port}`, stream: config.stream.name, app, log: () => lines.join('') };
  running.push(gw);
  return gw;
}

async function readyz(gw: Gateway): Promise<number> {
  return (await fetch(`${gw.url}/readyz`)).status;
}

async function becomesReady(gw: Gateway): Promise<void> {
  await waitFor(async () => (await readyz(gw)) === 200, { timeoutMs: 20_000, message: `ready; log:\n${gw.log()}` });
}

/** A signed webhook is accepted, and the stream holds it (read with the same credentials). */
async function storesAnEvent(gw: Gateway, nats: Partial<ConnectionOptions>): Promise<void> {
  const res = await post(gw.url, standardWebhook({ type: 'order.created', n: 1 }));
  expect(res.status).toBe(202);
  const nc = await connect(nats);
  try {
    const jsm = await jetstreamManager(nc);
    const msg = await jsm.streams.getMessage(gw.stream, { seq: res.body.seq as number });
    expect(msg?.json<{ id: string }>().id).toBe(res.body.id);
  } finally {
    await nc.close();
  }
}

describeWithNats('NATS credentials', () => {
  it('user and password from NATS_USER/NATS_PASSWORD', async () => {
    const nats = await natsServer({ authorization: { user: 'hookstream', password: PASSWORD } });
    const gw = await gateway({ NATS_URL: nats.url, NATS_USER: 'hookstream', NATS_PASSWORD: PASSWORD });
    await becomesReady(gw);
    await storesAnEvent(gw, { servers: nats.url, user: 'hookstream', pass: PASSWORD });
    expect(gw.log()).not.toContain(PASSWORD);
  });

  it("user and password from NATS_URL's user info (percent-encoded), never logged", async () => {
    const nats = await natsServer({ authorization: { user: 'hookstream', password: PASSWORD } });
    const url = nats.url.replace('nats://', `nats://hookstream:${encodeURIComponent(PASSWORD)}@`);
    const gw = await gateway({ NATS_URL: url });
    await becomesReady(gw);
    await storesAnEvent(gw, { servers: nats.url, user: 'hookstream', pass: PASSWORD });
    expect(gw.log()).not.toContain(PASSWORD);
    expect(gw.log()).not.toContain(encodeURIComponent(PASSWORD));
  });

  it('a token from NATS_TOKEN', async () => {
    const nats = await natsServer({ authorization: { token: TOKEN } });
    const gw = await gateway({ NATS_URL: nats.url, NATS_TOKEN: TOKEN });
    await becomesReady(gw);
    await storesAnEvent(gw, { servers: nats.url, token: TOKEN });
    expect(gw.log()).not.toContain(TOKEN);
  });

  it('an NKey seed file from NATS_NKEY', async () => {
    const user = nkeys.createUser();
    const seedFile = join(dir, 'user.nk');
    writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()));
    const nats = await natsServer({ authorization: { nkey: user.getPublicKey() } });
    const gw = await gateway({ NATS_URL: nats.url, NATS_NKEY: seedFile });
    await becomesReady(gw);
    await storesAnEvent(gw, { servers: nats.url, authenticator: nkeyAuthenticator(user.getSeed()) });
  });

  it('a .creds file from NATS_CREDS (a server in operator mode)', async () => {
    const { serverConfig, creds } = operatorSetup();
    const credsFile = join(dir, 'gateway.creds');
    writeFileSync(credsFile, creds);
    const nats = await natsServer({ extraConfig: serverConfig });
    const gw = await gateway({ NATS_URL: nats.url, NATS_CREDS: credsFile });
    await becomesReady(gw);
    await storesAnEvent(gw, { servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(creds)) });
  });

  it('a wrong password keeps the gateway unready, with a log line that says so and holds no password', async () => {
    const nats = await natsServer({ authorization: { user: 'hookstream', password: PASSWORD } });
    const wrong = 'wrong-password-0123456789';
    const url = nats.url.replace('nats://', `nats://hookstream:${wrong}@`);
    const gw = await gateway({ NATS_URL: url });
    await waitFor(() => gw.log().includes('NATS refused the credentials'), { message: 'the credentials log line' });
    const res = await fetch(`${gw.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ storeReady: false });
    const line = gw
      .log()
      .split('\n')
      .find((l) => l.includes('NATS refused the credentials'))!;
    expect(JSON.parse(line)).toMatchObject({ level: 50, servers: nats.url, auth: 'user' });
    expect(gw.log()).not.toContain(wrong);
    expect(gw.log()).not.toContain(PASSWORD);
    // A webhook meanwhile is answered 503 (the provider retries), never lost as a 2xx.
    expect((await post(gw.url, standardWebhook({ type: 'x' }))).status).toBe(503);
  });
});

/** A JWT signed the NATS way (ed25519 NKey of the issuer), as nsc would write it. */
function natsJwt(issuer: ReturnType<typeof nkeys.createOperator>, subject: string, name: string, nats: object): string {
  const b64 = (v: Uint8Array | string) => Buffer.from(v).toString('base64url');
  const head = b64(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims = {
    jti: Buffer.from(randomBytes(32)).toString('hex').toUpperCase(),
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const body = `${head}.${b64(JSON.stringify(claims))}`;
  return `${body}.${b64(issuer.sign(new TextEncoder().encode(body)))}`;
}

/** An operator, one account with JetStream, one user of it: the server's config and the user's .creds file. */
function operatorSetup(): { serverConfig: string; creds: string } {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const system = nkeys.createAccount();
  const user = nkeys.createUser();
  const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  const jetstream = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };
  const operatorJwt = natsJwt(operator, operator.getPublicKey(), 'test-operator', { type: 'operator' });
  const accountJwt = natsJwt(operator, account.getPublicKey(), 'hookstream', {
    type: 'account',
    limits: { ...unlimited, ...jetstream },
  });
  const systemJwt = natsJwt(operator, system.getPublicKey(), 'SYS', { type: 'account', limits: unlimited });
  const userJwt = natsJwt(account, user.getPublicKey(), 'gateway', {
    type: 'user',
    pub: {},
    sub: {},
    subs: -1,
    data: -1,
    payload: -1,
  });
  const seed = new TextDecoder().decode(user.getSeed());
  return {
    serverConfig: [
      `operator: ${JSON.stringify(operatorJwt)}`,
      'resolver: MEMORY',
      `system_account: ${system.getPublicKey()}`,
      `resolver_preload: { ${account.getPublicKey()}: ${JSON.stringify(accountJwt)}, ` +
        `${system.getPublicKey()}: ${JSON.stringify(systemJwt)} }`,
    ].join('\n'),
    creds:
      `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n` +
      `************************* IMPORTANT *************************\n` +
      `NKEY Seed printed below can be used to sign and prove identity.\n\n` +
      `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
  };
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
function makeCertificates(): {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
} {
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=hookstream test CA',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  );
  const leaf = (name: string, ext: string) => {
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${name}`,
      '-keyout',
      f(`${name}.key`),
      '-out',
      f(`${name}.csr`),
    );
    writeFileSync(f(`${name}.ext`), ext);
    openssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.pem`),
    );
  };
  // The Node client checks a server reached by IP address against the name "localhost" (it sends no SNI).
  leaf('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: f('ca.pem'),
    serverCert: f('server.pem'),
    serverKey: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}

describeWithNats('NATS over TLS', () => {
  it('trusts the CA of NATS_TLS_CA and presents the client certificate of NATS_TLS_CERT/NATS_TLS_KEY', async () => {
    const c = makeCertificates();
    const nats = await natsServer({
      tls: { certFile: c.serverCert, keyFile: c.serverKey, caFile: c.ca, verify: true },
    });
    const tlsEnv = { NATS_TLS_CA: c.ca, NATS_TLS_CERT: c.clientCert, NATS_TLS_KEY: c.clientKey };

    const gw = await gateway({ NATS_URL: nats.url.replace('nats://', 'tls://'), ...tlsEnv });
    await becomesReady(gw);
    await storesAnEvent(gw, { servers: nats.url, tls: { caFile: c.ca, certFile: c.clientCert, keyFile: c.clientKey } });

    // Without the CA the server's certificate is not trusted: not ready.
    const untrusting = await gateway({ NATS_URL: nats.url, NATS_TLS_CERT: c.clientCert, NATS_TLS_KEY: c.clientKey });
    await waitFor(() => untrusting.log().includes('cannot connect to NATS'), { message: 'the connect failure' });
    expect(await readyz(untrusting)).toBe(503);
  });
});

describeWithNats('NATS max_payload and ingest.maxBodyBytes', () => {
  const maxPayload = 256 * 1024;

  it('refuses to become ready when max_payload cannot hold the largest event, naming both numbers and the fix', async () => {
    const nats = await natsServer({ maxPayload });
    const gw = await gateway({ NATS_URL: nats.url }, { ingest: { maxBodyBytes: '256KB' } });
    await waitFor(() => gw.log().includes('max_payload is'), { message: 'the max_payload log line' });
    const line = gw
      .log()
      .split('\n')
      .find((l) => l.includes('max_payload is'))!;
    expect(line).toContain(`max_payload is ${maxPayload} bytes`);
    expect(line).toContain('ingest.maxBodyBytes (262144 bytes)');
    expect(line).toContain('lower ingest.maxBodyBytes to at most');
    expect(await readyz(gw)).toBe(503);
    expect((await post(gw.url, standardWebhook({ type: 'x' }))).status).toBe(503);
  });

  it('with a body limit that fits: ready, a body of exactly the limit that is not JSON is stored, and the stream caps messages', async () => {
    const nats = await natsServer({ maxPayload });
    const gw = await gateway({ NATS_URL: nats.url }, { ingest: { maxBodyBytes: '128KB' } });
    await becomesReady(gw);
    const body = Buffer.alloc(128 * 1024, 0xa5);
    const res = await fetch(`${gw.url}/webhooks/raw`, {
      method: 'POST',
      headers: {
        'content-type': 'application/octet-stream',
        'x-delivery': 'big-1',
        'x-signature': 'sha256=' + createHmac('sha256', RAW_SECRET).update(body).digest('hex'),
      },
      body,
    });
    expect(res.status).toBe(202);
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(gw.stream);
      const cfg = testConfig({ file: { ingest: { maxBodyBytes: '128KB' } } });
      expect(info.config.max_msg_size).toBe(largestMessageBytes(cfg));
      expect(info.config.max_msg_size).toBeLessThanOrEqual(maxPayload);
      const stored = await jsm.streams.getMessage(info.config.name, {
        seq: ((await res.json()) as { seq: number }).seq,
      });
      expect(Buffer.from(stored!.json<{ data_base64: string }>().data_base64, 'base64').equals(body)).toBe(true);
    } finally {
      await nc.close();
    }
  });
});
