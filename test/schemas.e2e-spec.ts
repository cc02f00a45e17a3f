/**
 * Issue "Event schemas and versions": the registry API, enforcement on /v1/events and /webhooks/:source, the
 * compatibility rules over HTTP, restart survival and a second replica, on both event stores. Webhooks are signed
 * by the providers' own libraries; what is stored is read back past the gateway.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Parser } from '@asyncapi/parser';
import { EventSource } from 'eventsource';
import { parse as parseYaml } from 'yaml';
import type { AppConfig } from '../src/config/app-config.js';
import { APP_CONFIG } from '../src/config/app-config.js';
import { createClient, type Delivery, type EventSourceConstructor } from '@hookstream/client';
import { waitFor } from './harness/wait.js';
import { describeEachStore, type StoreInspector } from './support/backends.js';
import { uniqueStreamName } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { E2E_SOURCES, post, standardWebhook } from './support/signers.js';

const BILLING = 'billing-key-0123456789';
const OPS = 'ops-admin-key-0123456789';
const OTHER = 'other-key-0123456789abc';
const PUBLIC_URL = 'https://hooks.example.test';

const invoiceV1 = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    total: { type: 'integer' },
    lines: { type: 'array', items: { type: 'object', properties: { total: { type: 'number' } }, required: ['total'] } },
    'a/b': { type: 'string' },
  },
  required: ['id'],
};

const paidSchema = {
  type: 'object',
  properties: { type: { const: 'invoice.paid' }, data: { type: 'object', required: ['amount'] } },
  required: ['type', 'data'],
};

/**
 * One JSON request on a connection of its own: the AsyncAPI parse blocks this process for seconds, after which
 * fetch may reuse a keep-alive socket the in-process server is closing (ECONNRESET).
 */
function api(
  gw: RunningGateway,
  method: string,
  path: string,
  opts: { key?: string; body?: unknown } = {},
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function violationCount(gw: RunningGateway, subject: string, mode: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`hookstream_schema_violations_total{subject="${subject}",mode="${mode}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describeEachStore('schemas', (backend) => {
  let gw: RunningGateway;
  let inspect: StoreInspector;
  let stream: string;
  let schemaDir: string;
  const fileConfig = () => ({
    stream: { name: stream },
    sources: E2E_SOURCES,
    auth: {
      apiKeys: [
        { id: 'billing', key: BILLING, publish: ['events.billing.>'], subscribe: ['events.>'] },
        { id: 'ops', key: OPS, admin: true },
        { id: 'other', key: OTHER, publish: ['events.other.>'] },
      ],
    },
    schemas: [{ subject: 'events.acme.invoice.paid', versions: [join(schemaDir, 'paid-v1.json')] }],
    server: { publicUrl: PUBLIC_URL },
  });

  const register = (subject: string, schema: unknown, extra: Record<string, unknown> = {}, key = BILLING) =>
    api(gw, 'POST', `/v1/schemas/${subject}/versions`, { key, body: { schema, ...extra } });
  const publish = (body: unknown, key = BILLING) => api(gw, 'POST', '/v1/events', { key, body });

  beforeAll(async () => {
    await backend.setup();
    schemaDir = mkdtempSync(join(tmpdir(), 'hookstream-schemas-'));
    writeFileSync(join(schemaDir, 'paid-v1.json'), JSON.stringify(paidSchema));
    stream = uniqueStreamName('SCHEMAS');
    gw = await startGateway(backend.configFor(fileConfig()));
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
    inspect = await backend.inspector(gw, stream);
  });

  afterAll(async () => {
    await inspect?.close();
    await gw?.close();
    await backend.teardown();
    if (schemaDir) rmSync(schemaDir, { recursive: true, force: true });
  });

  describe('the registry API', () => {
    it('registers, lists, and reads by version and latest', async () => {
      const created = await register('events.billing.invoice.created', invoiceV1);
      expect(created).toEqual({
        status: 201,
        body: {
          subject: 'events.billing.invoice.created',
          version: 1,
          compatibility: 'backward',
          createdAt: expect.any(String),
        },
      });
      const list = await api(gw, 'GET', '/v1/schemas', { key: OTHER });
      expect(list.status).toBe(200);
      expect(list.body.subjects).toEqual(
        expect.arrayContaining([
          {
            subject: 'events.billing.invoice.created',
            latestVersion: 1,
            compatibility: 'backward',
            mode: null,
            managed: 'api',
          },
          {
            subject: 'events.acme.invoice.paid',
            latestVersion: 1,
            compatibility: 'backward',
            mode: null,
            managed: 'config',
          },
        ]),
      );
      expect((await api(gw, 'GET', '/v1/schemas/events.billing.invoice.created', { key: OTHER })).body).toEqual({
        subject: 'events.billing.invoice.created',
        compatibility: 'backward',
        mode: null,
        managed: 'api',
        versions: [1],
      });
      for (const v of ['1', 'latest']) {
        const read = await api(gw, 'GET', `/v1/schemas/events.billing.invoice.created/versions/${v}`, { key: OTHER });
        expect(read).toEqual({
          status: 200,
          body: {
            subject: 'events.billing.invoice.created',
            version: 1,
            schema: invoiceV1,
            createdAt: created.body.createdAt,
          },
        });
      }
      expect(
        await api(gw, 'GET', '/v1/schemas/events.billing.invoice.created/versions/2', { key: OTHER }),
      ).toMatchObject({
        status: 404,
        body: { error: 'not_found' },
      });
      expect(await api(gw, 'GET', '/v1/schemas/events.billing.nothing', { key: OTHER })).toMatchObject({
        status: 404,
        body: { error: 'not_found' },
      });
    });

    it('needs an API key to read, and the publish grant or admin to change', async () => {
      expect(await api(gw, 'GET', '/v1/schemas')).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
      expect(await api(gw, 'GET', '/v1/schemas', { key: 'not-a-key-at-all-123' })).toMatchObject({ status: 401 });
      expect(await register('events.billing.refund', invoiceV1, {}, OTHER)).toMatchObject({
        status: 403,
        body: { error: 'forbidden' },
      });
      expect(
        await api(gw, 'PUT', '/v1/schemas/events.billing.refund/config', { key: OTHER, body: { mode: 'warn' } }),
      ).toMatchObject({ status: 403, body: { error: 'forbidden' } });
      expect(
        await api(gw, 'POST', '/v1/schemas/events.billing.refund/versions', { body: { schema: invoiceV1 } }),
      ).toMatchObject({ status: 401, body: { error: 'unauthorized' } });
      // admin: any subject, without any publish grant.
      expect(await register('events.anything.at.all', invoiceV1, {}, OPS)).toMatchObject({
        status: 201,
        body: { version: 1 },
      });
    });

    it('refuses an invalid schema (400 invalid_schema), a wildcard subject (400 invalid_subject), a declared subject (409 read_only)', async () => {
      const bad = await register('events.billing.bad', { type: 'strnig' });
      expect(bad.status).toBe(400);
      expect(bad.body).toEqual({ error: 'invalid_schema', message: expect.stringMatching(/type/) });
      expect(await register('events.billing.*', invoiceV1)).toMatchObject({
        status: 400,
        body: { error: 'invalid_subject' },
      });
      expect(await register('events.billing.>', invoiceV1)).toMatchObject({
        status: 400,
        body: { error: 'invalid_subject' },
      });
      expect(await register('events.acme.invoice.paid', paidSchema, {}, OPS)).toMatchObject({
        status: 409,
        body: { error: 'read_only' },
      });
      expect(
        await api(gw, 'POST', '/v1/schemas/events.billing.x/versions', { key: BILLING, body: { nope: 1 } }),
      ).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    });
  });

  describe('POST /v1/events', () => {
    const subject = 'events.billing.order.placed';
    beforeAll(async () => {
      expect((await register(subject, invoiceV1)).status).toBe(201);
    });

    it('stores a valid event with dataschema naming the version, and the SDK delivers it with dataschema', async () => {
      const res = await publish({ subject, id: 'ord-ok-1', data: { id: 'o1', total: 3, lines: [{ total: 1.5 }] } });
      expect(res.status).toBe(202);
      const stored = await inspect.get(res.body.results[0].seq);
      expect(stored?.envelope.dataschema).toBe(`${PUBLIC_URL}/v1/schemas/${subject}/versions/1`);
      const client = createClient({
        url: gw.url,
        token: BILLING,
        transport: 'sse',
        EventSource: EventSource as unknown as EventSourceConstructor,
        storage: null,
      });
      try {
        const delivered = await new Promise<Delivery>((resolve) => {
          client.subscribe([subject], (d) => d.event.id === 'ord-ok-1' && resolve(d), { from: 'earliest' });
        });
        expect(delivered.event.dataschema).toBe(`${PUBLIC_URL}/v1/schemas/${subject}/versions/1`);
      } finally {
        client.close();
      }
    });

    it('refuses the whole batch for one invalid item, with every error as a JSON pointer, storing nothing', async () => {
      const before = await inspect.lastSeq();
      const res = await publish([
        { subject, id: 'ord-batch-ok', data: { id: 'o2' } },
        { subject, id: 'ord-batch-bad', data: { total: 'x', lines: [{ total: 'y' }], 'a/b': 5 } },
      ]);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('schema_violation');
      expect(res.body.message).toEqual(expect.any(String));
      expect(res.body.errors.map((e: any) => [e.index, e.path]).sort()).toEqual(
        [
          [1, '/id'],
          [1, '/total'],
          [1, '/lines/0/total'],
          [1, '/a~1b'],
        ].sort(),
      );
      for (const e of res.body.errors) expect(e.message).toEqual(expect.any(String));
      expect(await inspect.lastSeq()).toBe(before);
    });

    it('validates against the version an item pins with schemaVersion', async () => {
      // v2 widens total to number: 2.5 passes v2, not v1.
      const v2 = { ...invoiceV1, properties: { ...invoiceV1.properties, total: { type: 'number' } } };
      expect((await register(subject, v2)).body.version).toBe(2);
      const pinnedOld = await publish({ subject, schemaVersion: 1, data: { id: 'o3', total: 2.5 } });
      expect(pinnedOld).toMatchObject({
        status: 400,
        body: { error: 'schema_violation', errors: [{ index: 0, path: '/total' }] },
      });
      const latest = await publish({ subject, data: { id: 'o3', total: 2.5 } });
      expect(latest.status).toBe(202);
      expect((await inspect.get(latest.body.results[0].seq))?.envelope.dataschema).toBe(
        `${PUBLIC_URL}/v1/schemas/${subject}/versions/2`,
      );
      const pinned = await publish({ subject, schemaVersion: 1, data: { id: 'o4', total: 2 } });
      expect((await inspect.get(pinned.body.results[0].seq))?.envelope.dataschema).toBe(
        `${PUBLIC_URL}/v1/schemas/${subject}/versions/1`,
      );
      expect(await publish({ subject, schemaVersion: 9, data: { id: 'o5' } })).toMatchObject({
        status: 400,
        body: { error: 'invalid_payload' },
      });
    });

    it('in warn mode stores an invalid event without dataschema and counts it', async () => {
      expect(await api(gw, 'PUT', `/v1/schemas/${subject}/config`, { key: BILLING, body: { mode: 'warn' } })).toEqual({
        status: 200,
        body: { compatibility: 'backward', mode: 'warn' },
      });
      const before = await violationCount(gw, subject, 'warn');
      const res = await publish({ subject, data: { total: 'not a number' } });
      expect(res.status).toBe(202);
      expect((await inspect.get(res.body.results[0].seq))?.envelope).not.toHaveProperty('dataschema');
      expect(await violationCount(gw, subject, 'warn')).toBe(before + 1);
      await api(gw, 'PUT', `/v1/schemas/${subject}/config`, { key: BILLING, body: { mode: null } });
    });

    it('leaves events of subjects without a schema untouched', async () => {
      const res = await publish({ subject: 'events.billing.free.form', data: { anything: true } });
      expect(res.status).toBe(202);
      expect((await inspect.get(res.body.results[0].seq))?.envelope).not.toHaveProperty('dataschema');
    });
  });

  describe('compatibility', () => {
    const base = { type: 'object', properties: { id: { type: 'string' }, n: { type: 'integer' } }, required: ['id'] };
    const newRequired = {
      type: 'object',
      properties: { id: { type: 'string' }, n: { type: 'integer' }, c: { type: 'string' } },
      required: ['id', 'c'],
    };
    const optional = { type: 'object', properties: { id: { type: 'string' }, n: { type: 'integer' } } };
    const widened = { type: 'object', properties: { id: { type: 'string' }, n: { type: 'number' } }, required: ['id'] };

    it('backward: a new required property is refused with reasons; optional and integer→number are accepted', async () => {
      const s = 'events.billing.compat.backward';
      expect((await register(s, base)).status).toBe(201);
      const refused = await register(s, newRequired);
      expect(refused.status).toBe(409);
      expect(refused.body).toEqual({
        error: 'incompatible_schema',
        message: expect.any(String),
        reasons: [expect.any(String)],
      });
      expect((await register(s, widened)).body.version).toBe(2);
      expect((await register(s, { ...widened, required: [] })).body.version).toBe(3);
    });

    it('forward: the reverse', async () => {
      const s = 'events.billing.compat.forward';
      expect((await register(s, base, { compatibility: 'forward' })).body).toMatchObject({
        version: 1,
        compatibility: 'forward',
      });
      expect(await register(s, optional)).toMatchObject({ status: 409, body: { error: 'incompatible_schema' } });
      expect(await register(s, widened)).toMatchObject({ status: 409, body: { error: 'incompatible_schema' } });
      expect((await register(s, newRequired)).body.version).toBe(2);
    });

    it('full: both directions; none: no check', async () => {
      const s = 'events.billing.compat.full';
      expect((await register(s, base, { compatibility: 'full' })).status).toBe(201);
      expect((await register(s, newRequired)).status).toBe(409);
      expect((await register(s, widened)).status).toBe(409);
      expect((await register(s, { ...base, title: 'same documents' })).body.version).toBe(2);
      expect(
        await api(gw, 'PUT', `/v1/schemas/${s}/config`, { key: BILLING, body: { compatibility: 'none' } }),
      ).toEqual({ status: 200, body: { compatibility: 'none', mode: null } });
      expect((await register(s, { type: 'string' })).body.version).toBe(3);
    });

    it('20 concurrent registrations get versions 1..20 exactly', async () => {
      const s = 'events.billing.compat.race';
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          register(s, { type: 'object', properties: { [`f${i}`]: { type: 'string' } } }, { compatibility: 'none' }),
        ),
      );
      for (const r of results) expect(r.status).toBe(201);
      expect(results.map((r) => r.body.version).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      expect((await api(gw, 'GET', `/v1/schemas/${s}`, { key: BILLING })).body.versions).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    });
  });

  describe('webhooks', () => {
    it('warn (the default): stores an invalid event without dataschema and counts it; a valid one gets dataschema', async () => {
      const subject = 'events.acme.invoice.paid';
      const before = await violationCount(gw, subject, 'warn');
      const bad = await post(gw.url, standardWebhook({ type: 'invoice.paid', data: { currency: 'eur' } }));
      expect(bad.status).toBe(202);
      expect((await inspect.get(bad.body.seq))?.envelope).not.toHaveProperty('dataschema');
      expect(await violationCount(gw, subject, 'warn')).toBe(before + 1);
      const good = await post(gw.url, standardWebhook({ type: 'invoice.paid', data: { amount: 42 } }));
      expect(good.status).toBe(202);
      expect((await inspect.get(good.body.seq))?.envelope.dataschema).toBe(
        `${PUBLIC_URL}/v1/schemas/${subject}/versions/1`,
      );
    });

    it('enforce: answers 422 schema_violation, stores nothing, and does not record the delivery as seen', async () => {
      const subject = 'events.acme.order.created';
      const schema = {
        type: 'object',
        properties: { data: { type: 'object', required: ['orderId'] } },
        required: ['data'],
      };
      expect((await register(subject, schema, {}, OPS)).status).toBe(201);
      expect(
        await api(gw, 'PUT', `/v1/schemas/${subject}/config`, { key: OPS, body: { mode: 'enforce' } }),
      ).toMatchObject({
        status: 200,
        body: { mode: 'enforce' },
      });
      const before = await inspect.lastSeq();
      const refused = await post(gw.url, standardWebhook({ type: 'order.created', data: {} }, { id: 'msg_enforce_1' }));
      expect(refused.status).toBe(422);
      expect(refused.body).toEqual({
        error: 'schema_violation',
        message: expect.any(String),
        errors: [{ index: 0, path: '/data/orderId', message: expect.any(String) }],
      });
      expect(await inspect.lastSeq()).toBe(before);
      expect(await violationCount(gw, subject, 'enforce')).toBe(1);
      // The schema is fixed (warn now); the provider's retry of the same delivery is stored, not a duplicate.
      await api(gw, 'PUT', `/v1/schemas/${subject}/config`, { key: OPS, body: { mode: 'warn' } });
      const retried = await post(gw.url, standardWebhook({ type: 'order.created', data: {} }, { id: 'msg_enforce_1' }));
      expect(retried.status).toBe(202);
      expect(retried.body.status).toBe('accepted');
    });
  });

  describe('AsyncAPI', () => {
    it('serves an AsyncAPI 3.0 document, without credentials, that parses without errors and names every source and subject', async () => {
      // Everything the document is compared with is read first: parsing takes seconds.
      const subjects = (await api(gw, 'GET', '/v1/schemas', { key: BILLING })).body.subjects as any[];
      expect(subjects.length).toBeGreaterThan(5);
      const latest = new Map<string, any>();
      for (const s of subjects) {
        latest.set(
          s.subject,
          (await api(gw, 'GET', `/v1/schemas/${s.subject}/versions/latest`, { key: BILLING })).body,
        );
      }
      const res = await fetch(`${gw.url}/v1/asyncapi.json`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const text = await res.text();
      const yaml = await fetch(`${gw.url}/v1/asyncapi.yaml`);
      expect(yaml.status).toBe(200);
      const raw = JSON.parse(text);
      expect(parseYaml(await yaml.text())).toEqual(raw);

      const { document, diagnostics } = await new Parser().parse(text);
      expect(diagnostics.filter((d) => d.severity === 0).map((d) => d.message)).toEqual([]);
      if (!document) throw new Error('no document');
      expect(document.version()).toBe('3.0.0');
      const addresses = document
        .channels()
        .all()
        .map((c) => c.address());
      for (const source of E2E_SOURCES) expect(addresses).toContain(`/webhooks/${source.name}`);
      for (const s of subjects) {
        expect(addresses).toContain(s.subject);
        const schema = latest.get(s.subject).schema;
        const channel = document
          .channels()
          .all()
          .find((c) => c.address() === s.subject);
        const message = channel?.messages().all()[0];
        expect(message?.name()).toBe(s.subject);
        // The event's data is the latest schema (as placed in components, references relocated).
        const data = message?.payload()?.properties()?.data;
        expect(data?.type()).toEqual(schema.type);
        expect(Object.keys(data?.properties() ?? {})).toEqual(Object.keys(schema.properties ?? {}));
        expect(raw.components.messages[Object.keys(channel?.json().messages ?? {})[0]].title).toContain(
          `version ${s.latestVersion}`,
        );
      }
    });
  });

  describe('restart and a second replica', () => {
    it('schemas survive a restart, and a second replica enforces a new version within seconds', async () => {
      const subject = 'events.billing.replica.check';
      expect((await register(subject, invoiceV1)).status).toBe(201);
      // Restart: a fresh gateway on the same store.
      const oldConfig = gw.app.get<AppConfig>(APP_CONFIG);
      await inspect.close();
      await gw.close();
      gw = await startGateway(backend.configFor(fileConfig(), oldConfig));
      inspect = await backend.inspector(gw, stream);
      await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, {
        message: 'restarted gateway ready',
      });
      expect((await api(gw, 'GET', `/v1/schemas/${subject}/versions/latest`, { key: BILLING })).body.schema).toEqual(
        invoiceV1,
      );
      expect(await publish({ subject, data: { total: 'x' } })).toMatchObject({
        status: 400,
        body: { error: 'schema_violation' },
      });

      const peer = await backend.startPeer(gw, fileConfig());
      try {
        const peerSubject = 'events.billing.replica.late';
        const probe = () =>
          api(peer, 'POST', '/v1/events', { key: BILLING, body: { subject: peerSubject, data: { total: 'x' } } });
        // No schema yet: stored (once the peer has loaded the registry; until then it answers 503, retryable).
        await waitFor(async () => (await probe()).status === 202, { message: 'the peer accepting events' });
        expect((await register(peerSubject, invoiceV1)).status).toBe(201); // registered on the first replica
        await waitFor(async () => (await probe()).status === 400, {
          timeoutMs: 5_000,
          message: 'the peer enforcing v1',
        });
        expect((await probe()).body.error).toBe('schema_violation');
      } finally {
        await peer.close();
      }
    });
  });
});
