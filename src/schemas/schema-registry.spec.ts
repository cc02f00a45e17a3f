import { afterEach, describe, expect, it } from '@jest/globals';
import { MemoryMetadataBucket } from '../../test/support/memory-metadata.js';
import { SchemaRegistry } from './schema-registry.js';
import { SchemaError } from './schema.errors.js';

const invoice = (extra: Record<string, object> = {}, required: string[] = ['id']) => ({
  type: 'object',
  properties: { id: { type: 'string' }, total: { type: 'integer' }, ...extra },
  required,
});

const registries: SchemaRegistry[] = [];
function registry(
  bucket = new MemoryMetadataBucket(),
  declared: ConstructorParameters<typeof SchemaRegistry>[0]['declared'] = [],
) {
  const r = new SchemaRegistry({
    declared,
    subjectPrefix: 'events',
    publicUrl: 'https://hooks.example.com',
    openBucket: async () => bucket,
    isConflict: (err) => err instanceof Error && err.name === 'MetadataConflictError',
    refreshMs: 20,
  });
  registries.push(r);
  return r;
}

afterEach(() => {
  for (const r of registries.splice(0)) r.stop();
});

async function refusal(p: Promise<unknown>): Promise<SchemaError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SchemaError) return err;
    throw err;
  }
  throw new Error('expected a SchemaError');
}

describe('SchemaRegistry', () => {
  it('numbers versions 1, 2, … and reads them back by number and as latest', async () => {
    const r = registry();
    const first = await r.register('events.billing.invoice', invoice());
    expect(first).toEqual({
      subject: 'events.billing.invoice',
      version: 1,
      compatibility: 'backward',
      createdAt: expect.any(String),
    });
    // Widening integer → number keeps every old document valid.
    expect((await r.register('events.billing.invoice', invoice({ total: { type: 'number' } }))).version).toBe(2);
    expect(await r.list()).toEqual([
      { subject: 'events.billing.invoice', latestVersion: 2, compatibility: 'backward', mode: null, managed: 'api' },
    ]);
    expect((await r.getVersion('events.billing.invoice', 'latest')).version).toBe(2);
    expect((await r.getVersion('events.billing.invoice', '1')).schema).toEqual(invoice());
    expect(r.lookup('events.billing.invoice')?.versions[1].dataschema).toBe(
      'https://hooks.example.com/v1/schemas/events.billing.invoice/versions/2',
    );
    expect((await refusal(r.getVersion('events.billing.invoice', '3'))).code).toBe('not_found');
    expect((await refusal(r.getVersion('events.billing.invoice', '01'))).code).toBe('not_found');
    expect((await refusal(r.get('events.billing.other'))).code).toBe('not_found');
  });

  it('refuses a breaking version with reasons, and stores nothing for it', async () => {
    const r = registry();
    await r.register('events.billing.invoice', invoice());
    const err = await refusal(
      r.register('events.billing.invoice', invoice({ currency: { type: 'string' } }, ['id', 'currency'])),
    );
    expect(err.code).toBe('incompatible_schema');
    expect(err.reasons).toEqual([expect.stringMatching(/refused by the new version/)]);
    expect((await r.get('events.billing.invoice')).versions).toHaveLength(1);
    // The subject's compatibility can be changed, then the same version goes in.
    expect(await r.configure('events.billing.invoice', { compatibility: 'forward' })).toEqual({
      compatibility: 'forward',
      mode: null,
    });
    expect(
      (await r.register('events.billing.invoice', invoice({ currency: { type: 'string' } }, ['id', 'currency'])))
        .version,
    ).toBe(2);
  });

  it('gives 20 concurrent registrations the versions 1..20 exactly, across replicas sharing the store', async () => {
    const bucket = new MemoryMetadataBucket();
    const replicas = [registry(bucket), registry(bucket), registry(bucket)];
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        replicas[i % 3].register('events.orders.created', invoice({ [`f${i}`]: { type: 'string' } }), 'none'),
      ),
    );
    expect(results.map((x) => x.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect((await replicas[2].get('events.orders.created')).versions.map((v) => v.version)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
  });

  it('a second replica sees a new version after its refresh', async () => {
    const bucket = new MemoryMetadataBucket();
    const a = registry(bucket);
    const b = registry(bucket);
    await b.start();
    expect(b.lookup('events.billing.invoice')).toBeUndefined();
    await a.register('events.billing.invoice', invoice());
    for (let i = 0; i < 200 && !b.lookup('events.billing.invoice'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(b.lookup('events.billing.invoice')?.versions).toHaveLength(1);
  });

  it('refuses invalid subjects and schemas, and changes to declared subjects', async () => {
    const r = registry(new MemoryMetadataBucket(), [
      { subject: 'events.declared.thing', versions: [{ file: 'x.json', schema: { type: 'object' } }], mode: 'warn' },
    ]);
    expect((await refusal(r.register('events.billing.*', invoice()))).code).toBe('invalid_subject');
    expect((await refusal(r.register('other.billing', invoice()))).code).toBe('invalid_subject');
    expect((await refusal(r.register('events.billing.invoice', { type: 'strnig' }))).code).toBe('invalid_schema');
    expect((await refusal(r.register('events.declared.thing', invoice()))).code).toBe('read_only');
    expect((await refusal(r.configure('events.declared.thing', { mode: 'enforce' }))).code).toBe('read_only');
    expect(await r.list()).toEqual([
      {
        subject: 'events.declared.thing',
        latestVersion: 1,
        compatibility: 'backward',
        mode: 'warn',
        managed: 'config',
      },
    ]);
  });

  it('keeps serving the last loaded schemas while the store is unreachable', async () => {
    const bucket = new MemoryMetadataBucket();
    const r = registry(bucket);
    await r.register('events.billing.invoice', invoice());
    bucket.down = true;
    expect((await r.list()).map((s) => s.subject)).toEqual(['events.billing.invoice']);
    expect(r.lookup('events.billing.invoice')).toBeDefined();
    await expect(r.register('events.billing.invoice', invoice())).rejects.toThrow('store unavailable');
  });
});
