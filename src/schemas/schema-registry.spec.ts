import { afterEach, describe, expect, it } from '@jest/globals';
import { MemoryMetadataStore } from '../../test/support/memory-metadata-store.js';
import { MetadataConflictError } from '../store/metadata.port.js';
import { SchemaRegistry } from './schema-registry.js';
import { SchemaError } from './schema.errors.js';

const invoice = (extra: Record<string, object> = {}, required: string[] = ['id']) => ({
  type: 'object',
  properties: { id: { type: 'string' }, total: { type: 'integer' }, ...extra },
  required,
});

const registries: SchemaRegistry[] = [];
/** A store shared by "replicas"; `up.value = false` makes it unreachable. */
function sharedStore() {
  const up = { value: true };
  return { up, store: new MemoryMetadataStore(() => up.value) };
}

function registry(shared = sharedStore(), declared: ConstructorParameters<typeof SchemaRegistry>[0]['declared'] = []) {
  const r = new SchemaRegistry({
    declared,
    subjectPrefix: 'events',
    publicUrl: 'https://hooks.example.com',
    openBucket: () => shared.store.bucket('schemas'),
    isConflict: (err) => err instanceof MetadataConflictError,
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
    const shared = sharedStore();
    const replicas = [registry(shared), registry(shared), registry(shared)];
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

  it('sees its own registration at once, even when a reload that listed before the write is still under way', async () => {
    const shared = sharedStore();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let holding = true;
    const r = new SchemaRegistry({
      declared: [],
      subjectPrefix: 'events',
      publicUrl: 'https://hooks.example.com',
      isConflict: (err) => err instanceof MetadataConflictError,
      openBucket: async () => {
        const bucket = await shared.store.bucket('schemas');
        return {
          get: (k) => bucket.get(k),
          create: (k, v) => bucket.create(k, v),
          put: (k, v) => bucket.put(k, v),
          // A full listing (a reload) that has read the bucket, then is slow to come back.
          list: async (prefix) => {
            const out = await bucket.list(prefix);
            if (prefix === undefined && holding) await gate;
            return out;
          },
        };
      },
    });
    const early = r.refresh(); // lists the empty bucket, then waits
    const registered = r.register('events.billing.invoice', invoice());
    setTimeout(() => {
      holding = false;
      release();
    }, 50);
    await registered;
    expect(r.lookup('events.billing.invoice')?.versions).toHaveLength(1);
    await early;
  });

  it('a second replica sees a new version after its refresh', async () => {
    const shared = sharedStore();
    const a = registry(shared);
    const b = registry(shared);
    await b.start();
    expect(b.lookup('events.billing.invoice')).toBeUndefined();
    await a.register('events.billing.invoice', invoice());
    for (let i = 0; i < 200 && !b.lookup('events.billing.invoice'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(b.lookup('events.billing.invoice')?.versions).toHaveLength(1);
  });

  it('refuses invalid subjects and schemas, and changes to declared subjects', async () => {
    const r = registry(sharedStore(), [
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

  it('a subject with settings but no version yet has no schema: ingest still skips the lookup', async () => {
    const r = registry();
    await r.configure('events.billing.invoice', { mode: 'warn' });
    expect(r.lookup('events.billing.invoice')).toBeUndefined();
    expect(r.isEmpty()).toBe(true);
    expect(await r.list()).toEqual([]);
    await r.register('events.billing.invoice', invoice());
    expect(r.lookup('events.billing.invoice')?.mode).toBe('warn');
  });

  it('keeps serving the last loaded schemas while the store is unreachable', async () => {
    const shared = sharedStore();
    const r = registry(shared);
    await r.register('events.billing.invoice', invoice());
    shared.up.value = false;
    expect((await r.list()).map((s) => s.subject)).toEqual(['events.billing.invoice']);
    expect(r.lookup('events.billing.invoice')).toBeDefined();
    await expect(r.register('events.billing.invoice', invoice())).rejects.toThrow('memory store is unavailable');
  });
});
