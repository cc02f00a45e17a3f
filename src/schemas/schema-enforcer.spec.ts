/**
 * Enforcement refusals: what the ingest edge answers for each (status, code, message, headers, body with the
 * per-item error list), and that the enforcer itself throws domain errors, never HTTP ones.
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { HttpException } from '@nestjs/common';
import { IngestError, SchemaViolationError } from '../ingest/ingest.errors.js';
import { asApiError } from '../ingest/ingest-refusal.js';
import { SchemaEnforcer } from './schema-enforcer.js';
import { SchemaRegistry } from './schema-registry.js';

const SUBJECT = 'events.billing.invoice';
const invoice = { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] };

function enforcer(mode: 'enforce' | 'warn' | undefined, loaded = true): SchemaEnforcer {
  const registry = new SchemaRegistry({
    declared: [{ subject: SUBJECT, versions: [{ file: 'invoice.json', schema: invoice }], mode }],
    subjectPrefix: 'events',
    publicUrl: 'https://hooks.example.com',
    // A store that was never read: the registry is not loaded until start() has read it once.
    openBucket: loaded ? undefined : () => new Promise(() => undefined),
    isConflict: () => false,
  });
  return new SchemaEnforcer(registry, new Registry());
}

function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (err) {
    return err;
  }
  throw new Error('expected a refusal');
}

/** The answer the ingest edge sends for a refusal, as the client sees it. */
function answer(err: unknown) {
  const api = asApiError(err);
  if (!api) throw new Error(`not an ingest refusal: ${String(err)}`);
  return { status: api.getStatus(), headers: api.headers, body: JSON.stringify(api.getResponse()) };
}

describe('SchemaEnforcer refusals, as answered at the ingest edge', () => {
  it('a batch with failing items: 400 schema_violation listing every error of every item', () => {
    const check = enforcer(undefined).batch();
    expect(check.item(0, SUBJECT, { id: 'a' }, undefined, 'item 0: ')).toMatch(/versions\/1$/);
    check.item(1, SUBJECT, { id: 7 }, undefined, 'item 1: ');
    check.item(2, SUBJECT, {}, undefined, 'item 2: ');
    expect(answer(thrown(() => check.finish()))).toEqual({
      status: 400,
      headers: {},
      body: JSON.stringify({
        error: 'schema_violation',
        message: 'events do not match their subject schema; nothing was stored',
        errors: [
          { index: 1, path: '/id', message: 'must be string' },
          { index: 2, path: '/id', message: "must have required property 'id'" },
        ],
      }),
    });
  });

  it('a webhook in enforce mode: 422 schema_violation with its errors at index 0', () => {
    const verdict = enforcer('enforce').checkWebhook('acme', SUBJECT, { id: 7 });
    expect(answer(verdict?.refused)).toEqual({
      status: 422,
      headers: {},
      body: JSON.stringify({
        error: 'schema_violation',
        message: `the event does not match version 1 of the schema of ${SUBJECT}; it was not stored`,
        errors: [{ index: 0, path: '/id', message: 'must be string' }],
      }),
    });
    expect(enforcer('warn').checkWebhook('acme', SUBJECT, { id: 7 })).toEqual({});
  });

  it('a registry not loaded yet: 503 unavailable with Retry-After, on both paths', () => {
    const unloaded = enforcer('enforce', false);
    const expected = {
      status: 503,
      headers: { 'Retry-After': '2' },
      body: JSON.stringify({ error: 'unavailable', message: 'the schema registry is not loaded yet; retry' }),
    };
    expect(answer(thrown(() => unloaded.batch()))).toEqual(expected);
    expect(answer(thrown(() => unloaded.checkWebhook('acme', SUBJECT, { id: 'a' })))).toEqual(expected);
  });

  it('a schemaVersion pin that names nothing: 400 invalid_payload', () => {
    const check = enforcer(undefined).batch();
    expect(answer(thrown(() => check.item(0, SUBJECT, { id: 'a' }, 2, 'item 0: ')))).toEqual({
      status: 400,
      headers: {},
      body: JSON.stringify({
        error: 'invalid_payload',
        message: `item 0: "schemaVersion" must be "latest" or one of the versions of ${SUBJECT} (1 to 1)`,
      }),
    });
    expect(answer(thrown(() => check.item(0, 'events.other', {}, 1, '')))).toEqual({
      status: 400,
      headers: {},
      body: JSON.stringify({
        error: 'invalid_payload',
        message: '"schemaVersion" is set, but events.other has no schema',
      }),
    });
  });
});

describe('SchemaEnforcer', () => {
  it("refuses with domain errors only: the status is the edge's choice", () => {
    const check = enforcer(undefined).batch();
    check.item(0, SUBJECT, {}, undefined, '');
    const batch = thrown(() => check.finish());
    expect(batch).toBeInstanceOf(SchemaViolationError);
    expect(batch).toMatchObject({ scope: 'batch', errors: [{ index: 0, path: '/id' }] });
    const webhook = enforcer('enforce').checkWebhook('acme', SUBJECT, undefined)?.refused;
    expect(webhook).toBeInstanceOf(SchemaViolationError);
    expect(webhook).toMatchObject({ scope: 'event', errors: [{ index: 0, path: '' }] });
    const unloaded = thrown(() => enforcer('enforce', false).batch());
    expect(unloaded).toBeInstanceOf(IngestError);
    expect(unloaded).toMatchObject({ code: 'unavailable' });
    const pin = thrown(() => enforcer(undefined).batch().item(0, SUBJECT, {}, 'v1', ''));
    expect(pin).toBeInstanceOf(IngestError);
    expect(pin).toMatchObject({ code: 'invalid_payload' });
    for (const err of [batch, webhook, unloaded, pin]) expect(err).not.toBeInstanceOf(HttpException);
  });
});
