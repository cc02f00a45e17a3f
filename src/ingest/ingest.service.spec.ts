/** The ingest service above the store port, with an in-memory store (the broker is tested for real in e2e). */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { AppConfig, SourceConfig } from '../config/app-config.js';
import type { Principal } from '../auth/auth.service.js';
import { MemoryEventStore } from '../../test/support/memory-event-store.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { AppendRequest, AppendResult } from '../store/event-store.port.js';
import { IngestError } from './ingest.errors.js';
import { ingestRefusal } from './ingest-refusal.js';
import { IngestService } from './ingest.service.js';

const NOW = 1_800_000_000_000;
const slack: SourceConfig = {
  name: 'slack',
  verifier: 'slack',
  secrets: ['slack-secret'],
  toleranceMs: 300_000,
  algorithm: 'sha256',
  encoding: 'hex',
  prefix: '',
  defaultType: 'webhook',
};
const raw: SourceConfig = { ...slack, name: 'raw', verifier: 'hmac', header: 'x-sig', secrets: ['raw-secret'], idHeader: 'x-id' };

function config(): AppConfig {
  return {
    stream: { name: 'EVENTS', subjectPrefix: 'events', maxAgeMs: 1e9, maxBytes: 1e9, replicas: 1, duplicateWindowMs: 120_000 },
    idempotency: { ttlMs: 1e9 },
    ingest: { maxBodyBytes: 1e6, bodyTimeoutMs: 30_000, maxJsonDepth: 10, maxInFlight: 2, publishTimeoutMs: 100 },
    sources: new Map([
      ['slack', slack],
      ['raw', raw],
    ]),
  } as unknown as AppConfig;
}

function setup(store = new MemoryEventStore({ epoch: 'e1' })) {
  const metrics = new MetricsService();
  return { store, metrics, ingest: new IngestService(config(), store, metrics, () => NOW) };
}

function rawRequest(body: string, id = 'd1', contentType = 'application/json') {
  const sig = createHmac('sha256', 'raw-secret').update(body).digest('hex');
  return { source: 'raw', headers: { 'x-sig': [sig], 'x-id': [id] }, body: Buffer.from(body), contentType };
}

/** The service refuses with a domain error (no HTTP in it); the status is what the HTTP edge makes of it. */
async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string; headers: Record<string, string> }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof IngestError)) throw err;
    const answer = ingestRefusal(err);
    return { status: answer.getStatus(), code: answer.code, headers: answer.headers };
  }
  throw new Error('expected a refusal');
}

const key: Principal = { kind: 'apiKey', id: 'billing', subscribe: [], publish: ['events.billing.>'] };

describe('IngestService.ingestWebhook', () => {
  it('accepts, then answers a re-sent delivery as a duplicate with the original seq', async () => {
    const { ingest, store } = setup();
    const first = await ingest.ingestWebhook(rawRequest('{"type":"a.b"}'));
    expect(first).toEqual({
      status: 202,
      body: { status: 'accepted', id: 'd1', subject: 'events.raw.webhook', seq: 1, cursor: 'e1_1' },
    });
    const again = await ingest.ingestWebhook(rawRequest('{"type":"a.b"}'));
    expect(again).toEqual({ status: 200, body: { status: 'duplicate', id: 'd1', seq: 1 } });
    expect(store.stored()).toHaveLength(1);
    expect(JSON.parse(Buffer.from(store.stored()[0].data).toString())).toMatchObject({ id: 'd1', source: '/webhooks/raw' });
  });

  it('refuses unknown sources, bad signatures and bad JSON without storing', async () => {
    const { ingest, store } = setup();
    expect(await refusal(ingest.ingestWebhook({ ...rawRequest('{}'), source: 'nope' }))).toMatchObject({ status: 404, code: 'unknown_source' });
    expect(await refusal(ingest.ingestWebhook({ ...rawRequest('{}'), headers: { 'x-sig': ['00'] } }))).toMatchObject({
      status: 401,
      code: 'invalid_signature',
    });
    expect(await refusal(ingest.ingestWebhook(rawRequest('{"a":')))).toMatchObject({ status: 400, code: 'invalid_payload' });
    expect(await refusal(ingest.ingestWebhook(rawRequest('['.repeat(11) + ']'.repeat(11))))).toMatchObject({ code: 'invalid_payload' });
    expect(store.stored()).toHaveLength(0);
  });

  it("answers Slack's url_verification with the challenge and stores nothing", async () => {
    const { ingest, store } = setup();
    const body = JSON.stringify({ type: 'url_verification', challenge: 'c-123', token: 't' });
    const ts = String(Math.floor(NOW / 1000));
    const sig = 'v0=' + createHmac('sha256', 'slack-secret').update(`v0:${ts}:${body}`).digest('hex');
    const answer = await ingest.ingestWebhook({
      source: 'slack',
      headers: { 'x-slack-signature': [sig], 'x-slack-request-timestamp': [ts] },
      body: Buffer.from(body),
      contentType: 'application/json',
    });
    expect(answer).toEqual({ status: 200, body: { challenge: 'c-123' } });
    expect(store.stored()).toHaveLength(0);
  });

  it('answers 503 with Retry-After when the store fails, and never a 2xx', async () => {
    const { ingest, store } = setup();
    store.setAvailable(false);
    const r = await refusal(ingest.ingestWebhook(rawRequest('{}')));
    expect(r).toMatchObject({ status: 503, code: 'unavailable' });
    expect(r.headers['Retry-After']).toMatch(/^\d+$/);
  });

  it('answers 503 at once past maxInFlight, and after stopAccepting', async () => {
    const store = new MemoryEventStore({ epoch: 'e1' });
    const pending: (() => void)[] = [];
    const slowStore = Object.assign(Object.create(store) as MemoryEventStore, {
      append: (req: AppendRequest) =>
        new Promise<AppendResult>((resolve) => pending.push(() => void store.append(req).then(resolve))),
    });
    const { ingest } = setup(slowStore);
    const a = ingest.ingestWebhook(rawRequest('{}', 'x1'));
    const b = ingest.ingestWebhook(rawRequest('{}', 'x2'));
    await new Promise((r) => setImmediate(r));
    expect(await refusal(ingest.ingestWebhook(rawRequest('{}', 'x3')))).toMatchObject({ status: 503 });
    let drained = false;
    const drain = ingest.drained(5_000).then(() => (drained = true));
    ingest.stopAccepting();
    expect(await refusal(ingest.ingestWebhook(rawRequest('{}', 'x4')))).toMatchObject({ status: 503 });
    expect(drained).toBe(false);
    for (const release of pending) release();
    await Promise.all([a, b, drain]);
    expect(drained).toBe(true);
  });
});

describe('IngestService.publish', () => {
  it('stores a batch in order and recognises re-sent ids', async () => {
    const { ingest, store } = setup();
    const batch = [
      { subject: 'events.billing.invoice.created', id: 'i1', data: { n: 1 } },
      { subject: 'events.billing.invoice.paid', id: 'i2', type: 'invoice.paid', data: { n: 2 } },
    ];
    const first = await ingest.publish(key, batch);
    expect(first).toEqual([
      { id: 'i1', seq: 1, cursor: 'e1_1', duplicate: false },
      { id: 'i2', seq: 2, cursor: 'e1_2', duplicate: false },
    ]);
    const again = await ingest.publish(key, batch[1]);
    expect(again).toEqual([{ id: 'i2', seq: 2, cursor: 'e1_2', duplicate: true }]);
    const envelopes = store.stored().map((e) => JSON.parse(Buffer.from(e.data).toString()));
    expect(envelopes.map((e) => e.type)).toEqual(['billing.invoice.created', 'invoice.paid']);
  });

  it.each([
    ['a wildcard subject', { subject: 'events.billing.*', data: 1 }, 400, 'invalid_subject'],
    ['a subject outside the prefix', { subject: 'other.billing.x', data: 1 }, 400, 'invalid_subject'],
    ['an empty token', { subject: 'events..x', data: 1 }, 400, 'invalid_subject'],
    ['a subject outside the key', { subject: 'events.orders.x', data: 1 }, 403, 'forbidden'],
    ['no data', { subject: 'events.billing.x' }, 400, 'invalid_payload'],
    ['a non-string id', { subject: 'events.billing.x', id: 5, data: 1 }, 400, 'invalid_payload'],
    ['not an object', 'hello', 400, 'invalid_payload'],
  ])('refuses a batch holding %s, storing nothing of it', async (_n, bad, status, code) => {
    const { ingest, store } = setup();
    const batch = [{ subject: 'events.billing.ok', id: 'ok', data: 1 }, bad];
    expect(await refusal(ingest.publish(key, batch))).toMatchObject({ status, code });
    expect(store.stored()).toHaveLength(0);
  });

  it('refuses empty and oversized batches', async () => {
    const { ingest } = setup();
    expect(await refusal(ingest.publish(key, []))).toMatchObject({ code: 'invalid_payload' });
    const big = Array.from({ length: 1001 }, (_, i) => ({ subject: 'events.billing.x', id: `b${i}`, data: i }));
    expect(await refusal(ingest.publish(key, big))).toMatchObject({ code: 'invalid_payload' });
  });
});

describe('IngestService cursor epoch', () => {
  it('answers 503, not 500, when the event is stored but no epoch can be read yet', async () => {
    const store = new MemoryEventStore({ epoch: 'e1' });
    const noState = Object.assign(Object.create(store) as MemoryEventStore, {
      state: () => Promise.reject(new Error('stream info timed out')),
    });
    const { ingest } = setup(noState);
    expect(await refusal(ingest.ingestWebhook(rawRequest('{}', 'e-1')))).toMatchObject({ status: 503, code: 'unavailable' });
    expect(store.stored()).toHaveLength(1);
  });
});

describe('IngestService: stored events never exceed the bound the store is sized to', () => {
  // 1e6-byte bodies: at most 4 * ceil(1e6 / 3) + 64 KiB per stored event (maxStoredEventBytes).
  const bound = 4 * Math.ceil(1e6 / 3) + 64 * 1024;
  // `9e20` re-encodes as 900000000000000000000: JSON that grows 4x when stored.
  const growing = (bytes: number) => `[${Array.from({ length: Math.floor(bytes / 5) }, () => '9e20').join(',')}]`;

  it('a non-JSON body of maxBodyBytes fits the bound', async () => {
    const { ingest, store } = setup();
    const body = 'x'.repeat(1e6);
    await ingest.ingestWebhook(rawRequest(body, 'big', 'application/octet-stream'));
    expect(store.stored()[0].data.length).toBeGreaterThan(1.3e6);
    expect(store.stored()[0].data.length).toBeLessThanOrEqual(bound);
  });

  it('refuses a webhook whose JSON grows past it with 413 payload_too_large, storing nothing', async () => {
    const { ingest, store } = setup();
    const body = growing(900_000);
    expect(body.length).toBeLessThanOrEqual(1e6);
    expect(await refusal(ingest.ingestWebhook(rawRequest(body)))).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(store.stored()).toHaveLength(0);
  });

  it('refuses a /v1/events batch with one such item before storing any item', async () => {
    const { ingest, store } = setup();
    const items = [
      { subject: 'events.billing.ok', data: { a: 1 } },
      { subject: 'events.billing.big', data: JSON.parse(growing(600_000)) as unknown },
    ];
    expect(await refusal(ingest.publish(key, items))).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(store.stored()).toHaveLength(0);
  });
});
