import { describe, expect, it } from '@jest/globals';
import { checkCompatibility, includes } from './compatibility.js';

const obj = (properties: Record<string, object>, required: string[] = [], extra: object = {}) => ({
  type: 'object',
  properties,
  required,
  ...extra,
});

const v1 = obj({ id: { type: 'string' }, total: { type: 'integer' } }, ['id']);
const newRequired = obj({ id: { type: 'string' }, total: { type: 'integer' }, currency: { type: 'string' } }, [
  'id',
  'currency',
]);
const optionalId = obj({ id: { type: 'string' }, total: { type: 'integer' } });
const widened = obj({ id: { type: 'string' }, total: { type: 'number' } }, ['id']);

describe('checkCompatibility', () => {
  it('backward: refuses a new required property, with a reason', async () => {
    const reasons = await checkCompatibility('backward', v1, newRequired);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/valid under the latest version are refused by the new version/);
  });

  it('backward: accepts making a property optional and widening integer to number', async () => {
    expect(await checkCompatibility('backward', v1, optionalId)).toEqual([]);
    expect(await checkCompatibility('backward', v1, widened)).toEqual([]);
  });

  it('forward: the reverse (a new required property is fine, optional or wider is not)', async () => {
    expect(await checkCompatibility('forward', v1, newRequired)).toEqual([]);
    expect(await checkCompatibility('forward', v1, optionalId)).not.toEqual([]);
    expect(await checkCompatibility('forward', v1, widened)).not.toEqual([]);
  });

  it('full: only changes that keep the set of valid documents in both directions', async () => {
    expect(await checkCompatibility('full', v1, newRequired)).not.toEqual([]);
    expect(await checkCompatibility('full', v1, widened)).not.toEqual([]);
    // Same documents, different annotations.
    expect(await checkCompatibility('full', v1, { ...v1, title: 'Invoice', description: 'v2' })).toEqual([]);
  });

  it('none: anything goes', async () => {
    expect(await checkCompatibility('none', v1, { type: 'string' })).toEqual([]);
  });

  it('adding a property to a closed object is backward compatible; removing one is not', async () => {
    const closed = obj({ id: { type: 'string' } }, ['id'], { additionalProperties: false });
    const more = obj({ id: { type: 'string' }, note: { type: 'string' } }, ['id'], { additionalProperties: false });
    expect(await checkCompatibility('backward', closed, more)).toEqual([]);
    expect(await checkCompatibility('backward', more, closed)).not.toEqual([]);
  });

  it('resolves $defs / $ref before comparing', async () => {
    const withRef = {
      $defs: { money: { type: 'integer', minimum: 0 } },
      type: 'object',
      properties: { total: { $ref: '#/$defs/money' } },
    };
    const wider = { type: 'object', properties: { total: { type: 'number' } } };
    expect(await checkCompatibility('backward', withRef, wider)).toEqual([]);
    expect(await checkCompatibility('forward', withRef, wider)).not.toEqual([]);
  });
});

describe('keywords the set comparison does not model', () => {
  const status = (values: string[]) => obj({ status: { type: 'string', enum: values } }, ['status']);

  it('an unchanged enum, or one narrowed to a subset, is proven; an added or widened one is not', async () => {
    expect(await checkCompatibility('full', status(['a', 'b']), status(['a', 'b']))).toEqual([]);
    // backward: every old document must pass the new schema. Dropping the enum widens: provable.
    expect(
      await checkCompatibility('backward', status(['a']), obj({ status: { type: 'string' } }, ['status'])),
    ).toEqual([]);
    // Narrowing the accepting side's enum: sub {a} ⊆ sup {a, b} is provable, the reverse is refused.
    expect(await includes(status(['a']), status(['a', 'b']), 'old', 'new')).toEqual([]);
    const refused = await includes(status(['a', 'b']), status(['a']), 'old', 'new');
    expect(refused).toEqual([expect.stringMatching(/^cannot prove: "enum" at \/properties\/status\/enum in new/)]);
  });

  it('adding a format or pattern is refused as unprovable, keeping an identical one is fine', async () => {
    const plain = obj({ email: { type: 'string' } });
    const withFormat = obj({ email: { type: 'string', format: 'email' } });
    expect(await checkCompatibility('backward', plain, withFormat)).toEqual([
      expect.stringMatching(/^cannot prove: "format"/),
    ]);
    expect(await checkCompatibility('backward', withFormat, plain)).toEqual([]);
    expect(await checkCompatibility('full', withFormat, withFormat)).toEqual([]);
  });

  it('refuses keywords it does not model at all, and constraints under anyOf / not it cannot compare', async () => {
    const tuple = { type: 'array', prefixItems: [{ type: 'string' }] };
    expect(await checkCompatibility('backward', tuple, tuple)).toEqual(
      [
        expect.stringMatching(/^cannot prove: the new version uses "prefixItems"/),
        expect.stringMatching(/^cannot prove: the latest version uses "prefixItems"/),
      ].reverse(),
    );
    const anyOfEnum = { anyOf: [{ enum: ['a'] }, { type: 'number' }] };
    expect(await checkCompatibility('backward', { type: 'number' }, anyOfEnum)).toEqual([
      expect.stringMatching(/^cannot prove: the new version uses "enum" at \/anyOf\/0\/enum inside anyOf/),
    ]);
  });

  it('refuses recursive and outside references', async () => {
    const tree = {
      $defs: { node: { type: 'object', properties: { child: { $ref: '#/$defs/node' } } } },
      $ref: '#/$defs/node',
    };
    expect(await checkCompatibility('backward', tree, tree)).toEqual([
      expect.stringMatching(/recursive/),
      expect.stringMatching(/recursive/),
    ]);
    const outside = { $ref: 'https://example.com/schema.json' };
    expect(await checkCompatibility('forward', { type: 'string' }, outside)).toEqual([
      expect.stringMatching(/only references inside the schema are compared/),
    ]);
  });
});
