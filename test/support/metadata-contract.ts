/**
 * The metadata port contract, run against every event store (JetStream, embedded, the in-memory double). It uses
 * the ports only, so what passes here is what the endpoint registry and the schema registry may rely on.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { EventStore } from '../../src/store/event-store.port.js';
import { MetadataConflictError, type MetadataBucket } from '../../src/store/metadata.port.js';

export interface MetadataContractSetup {
  /** A started store whose metadata is empty. */
  store: EventStore;
  /** Stops `store` and returns a new started adapter on the same NATS stream / data directory (a restart). */
  reopen?: () => Promise<EventStore>;
  /** Stops every store setup or reopen started and removes what they created. */
  cleanup: () => Promise<void>;
}

/**
 * One "register the next version" step as a registry does it: read the versions under `prefix`, create the next
 * one, and on a conflict (someone else took that number) read again. Resolves to the version this caller got.
 */
export async function registerNext(bucket: MetadataBucket, prefix: string, value: string): Promise<number> {
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const versions = (await bucket.list(prefix)).map((e) => Number(e.key.slice(prefix.length)));
    const next = Math.max(0, ...versions) + 1;
    try {
      await bucket.create(`${prefix}${next}`, value);
      return next;
    } catch (err) {
      if (!(err instanceof MetadataConflictError)) throw err;
    }
  }
  throw new Error(`${value} never got a version`);
}

/** Adds `by` to a counter stored as a decimal string, by read → update → retry on conflict. */
export async function increment(bucket: MetadataBucket, key: string, by = 1): Promise<void> {
  for (let attempt = 0; attempt < 1_000; attempt++) {
    const current = await bucket.get(key);
    if (!current) throw new Error(`${key} is missing`);
    try {
      await bucket.update(key, String(Number(current.value) + by), current.revision);
      return;
    } catch (err) {
      if (!(err instanceof MetadataConflictError)) throw err;
    }
  }
  throw new Error(`${key}: the update never went through`);
}

/** Promise.all that waits for every racer before failing, so none is still writing after its test ended. */
export async function settleAll<T>(racers: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(racers);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

export function describeMetadataContract(name: string, setup: () => Promise<MetadataContractSetup>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    let ctx: MetadataContractSetup;
    let bucket: MetadataBucket;

    beforeEach(async () => {
      ctx = await setup();
      bucket = await ctx.store.metadata().bucket('contract');
    });

    afterEach(async () => {
      await ctx?.cleanup();
    });

    it('creates a key once, reads it back, and refuses a second create without changing it', async () => {
      expect(await bucket.get('endpoints.ep1')).toBeNull();
      const revision = await bucket.create('endpoints.ep1', '{"url":"https://a.example"}');
      expect(revision).toBeGreaterThan(0);
      expect(await bucket.get('endpoints.ep1')).toEqual({
        key: 'endpoints.ep1',
        value: '{"url":"https://a.example"}',
        revision,
      });

      await expect(bucket.create('endpoints.ep1', 'other')).rejects.toBeInstanceOf(MetadataConflictError);
      expect(await bucket.get('endpoints.ep1')).toEqual({
        key: 'endpoints.ep1',
        value: '{"url":"https://a.example"}',
        revision,
      });
    });

    it('updates only at the current revision; a stale revision or a missing key conflicts', async () => {
      const r1 = await bucket.create('k', 'one');
      const r2 = await bucket.update('k', 'two', r1);
      expect(r2).toBeGreaterThan(r1);
      expect(await bucket.get('k')).toEqual({ key: 'k', value: 'two', revision: r2 });

      await expect(bucket.update('k', 'stale', r1)).rejects.toBeInstanceOf(MetadataConflictError);
      await expect(bucket.update('k', 'ahead', r2 + 1000)).rejects.toBeInstanceOf(MetadataConflictError);
      expect((await bucket.get('k'))?.value).toBe('two');

      await expect(bucket.update('missing', 'x', r2)).rejects.toBeInstanceOf(MetadataConflictError);
      expect(await bucket.get('missing')).toBeNull();
    });

    it('puts unconditionally, with a new higher revision each time', async () => {
      const r1 = await bucket.put('p', 'a');
      const r2 = await bucket.put('p', 'b');
      expect(r2).toBeGreaterThan(r1);
      expect(await bucket.get('p')).toEqual({ key: 'p', value: 'b', revision: r2 });
      await expect(bucket.create('p', 'c')).rejects.toBeInstanceOf(MetadataConflictError);
    });

    it('deletes (also an absent key); a re-created key has a new revision the old one cannot update', async () => {
      const r1 = await bucket.create('d', 'first');
      await bucket.delete('d');
      expect(await bucket.get('d')).toBeNull();
      expect(await bucket.list()).toEqual([]);
      await expect(bucket.update('d', 'after delete', r1)).rejects.toBeInstanceOf(MetadataConflictError);
      await bucket.delete('d');
      await bucket.delete('never-there');

      const r2 = await bucket.create('d', 'second');
      expect(r2).toBeGreaterThan(r1);
      await expect(bucket.update('d', 'stale writer', r1)).rejects.toBeInstanceOf(MetadataConflictError);
      expect(await bucket.get('d')).toEqual({ key: 'd', value: 'second', revision: r2 });

      await bucket.delete('d');
      const r3 = await bucket.put('d', 'put after delete');
      expect(r3).toBeGreaterThan(r2);
      expect((await bucket.get('d'))?.value).toBe('put after delete');
    });

    it('lists live entries by key prefix, in key order, with values and revisions', async () => {
      expect(await bucket.list()).toEqual([]);
      const keys = ['orders.v2', 'orders.v10', 'orders.v1', 'ordersx.v1', 'orders.v1.draft', 'other', 'o', 'a=b_c-d'];
      const revisions = new Map<string, number>();
      for (const k of keys) revisions.set(k, await bucket.put(k, `value of ${k}`));
      await bucket.create('orders.v3', 'gone');
      await bucket.delete('orders.v3');

      const entry = (k: string) => ({ key: k, value: `value of ${k}`, revision: revisions.get(k) });
      const sorted = [...keys].sort();
      expect(await bucket.list()).toEqual(sorted.map(entry));
      expect(await bucket.list('')).toEqual(sorted.map(entry));
      expect((await bucket.list('orders.')).map((e) => e.key)).toEqual([
        'orders.v1',
        'orders.v1.draft',
        'orders.v10',
        'orders.v2',
      ]);
      // A prefix may end inside a part: 'orders.v1' also starts 'orders.v10'.
      expect((await bucket.list('orders.v1')).map((e) => e.key)).toEqual([
        'orders.v1',
        'orders.v1.draft',
        'orders.v10',
      ]);
      expect((await bucket.list('orders')).map((e) => e.key)).toEqual([
        'orders.v1',
        'orders.v1.draft',
        'orders.v10',
        'orders.v2',
        'ordersx.v1',
      ]);
      expect((await bucket.list('o')).map((e) => e.key)).toEqual(sorted.filter((k) => k.startsWith('o')));
      expect(await bucket.list('orders.v1.draft')).toEqual([entry('orders.v1.draft')]);
      expect(await bucket.list('orders.v3')).toEqual([]);
      expect(await bucket.list('nothing')).toEqual([]);
    });

    it('keeps buckets apart, and opening a bucket again sees what was written', async () => {
      const other = await ctx.store.metadata().bucket('contract_other');
      await bucket.put('shared.key', 'in contract');
      expect(await other.get('shared.key')).toBeNull();
      expect(await other.list()).toEqual([]);
      await other.create('shared.key', 'in other');
      expect((await bucket.get('shared.key'))?.value).toBe('in contract');

      const again = await ctx.store.metadata().bucket('contract');
      expect((await again.get('shared.key'))?.value).toBe('in contract');
    });

    it('refuses bad bucket names, keys, prefixes and revisions as caller errors', async () => {
      const metadata = ctx.store.metadata();
      for (const name of ['', 'Upper', 'with-dash', 'dot.ted', 'sp ace', '>']) {
        await expect(metadata.bucket(name)).rejects.toBeInstanceOf(RangeError);
      }
      for (const key of ['', '.a', 'a.', 'a..b', 'a b', 'a/b', 'a*', 'a.>', 'é']) {
        await expect(bucket.get(key)).rejects.toBeInstanceOf(RangeError);
        await expect(bucket.create(key, 'x')).rejects.toBeInstanceOf(RangeError);
        await expect(bucket.put(key, 'x')).rejects.toBeInstanceOf(RangeError);
        await expect(bucket.delete(key)).rejects.toBeInstanceOf(RangeError);
      }
      for (const prefix of ['.a', 'a..', 'a b', '*', '>']) {
        await expect(bucket.list(prefix)).rejects.toBeInstanceOf(RangeError);
      }
      const r = await bucket.create('k', 'v');
      for (const revision of [0, -1, 1.5, Number.NaN]) {
        await expect(bucket.update('k', 'x', revision)).rejects.toBeInstanceOf(RangeError);
      }
      expect(await bucket.get('k')).toEqual({ key: 'k', value: 'v', revision: r });
      expect(await bucket.list()).toEqual([{ key: 'k', value: 'v', revision: r }]);
    });

    it('stores values exactly, including empty, unicode and large ones', async () => {
      const values = ['', 'ümlaut ✓ 🚀', 'line\nbreak\ttab "quotes"', 'x'.repeat(256 * 1024)];
      for (const [i, v] of values.entries()) await bucket.put(`v${i}`, v);
      for (const [i, v] of values.entries()) expect((await bucket.get(`v${i}`))?.value).toBe(v);
    });

    it('gives 20 racing "next version" registrations exactly the versions 1..20', async () => {
      await bucket.put('unrelated.v99', 'decoy');
      await bucket.put('schemasx.v50', 'decoy');
      const got = await settleAll(
        Array.from({ length: 20 }, (_, i) => registerNext(bucket, 'schemas.orders.v', `racer-${i}`)),
      );
      expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      const stored = await bucket.list('schemas.orders.v');
      expect(stored.map((e) => Number(e.key.slice('schemas.orders.v'.length))).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      // Each racer's value sits at the version it was told it got.
      for (const [i, version] of got.entries()) {
        expect((await bucket.get(`schemas.orders.v${version}`))?.value).toBe(`racer-${i}`);
      }
    });

    it('loses no update when 10 writers increment one record concurrently', async () => {
      await bucket.create('counter', '0');
      await settleAll(
        Array.from({ length: 10 }, async () => {
          for (let i = 0; i < 5; i++) await increment(bucket, 'counter');
        }),
      );
      expect((await bucket.get('counter'))?.value).toBe('50');
    });

    it('keeps values and keeps revisions growing across a store restart', async () => {
      if (!ctx.reopen) return; // the in-memory double has nothing to restart
      const r1 = await bucket.create('survivor', 'still here');
      await bucket.put('endpoints.a', 'A');
      const newest = await bucket.put('endpoints.b', 'B');
      await bucket.delete('endpoints.b'); // the newest revision's key is gone before the restart

      const store = await ctx.reopen();
      const reopened = await store.metadata().bucket('contract');
      expect(await reopened.get('survivor')).toEqual({ key: 'survivor', value: 'still here', revision: r1 });
      expect((await reopened.list('endpoints.')).map((e) => [e.key, e.value])).toEqual([['endpoints.a', 'A']]);
      expect(await reopened.get('endpoints.b')).toBeNull();
      // Revisions are never reused: a writer that held one from before the restart cannot match a new key.
      const r2 = await reopened.create('endpoints.b', 'B again');
      expect(r2).toBeGreaterThan(newest);
      await expect(reopened.update('survivor', 'x', r1 + 1)).rejects.toBeInstanceOf(MetadataConflictError);
      expect(await reopened.update('survivor', 'updated after restart', r1)).toBeGreaterThan(r2);
    });
  });
}
