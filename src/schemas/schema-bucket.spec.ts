/** The registry's key layout in the metadata bucket, and reading a listing of it back. */
import { describe, expect, it } from '@jest/globals';
import { configKey, storedSubjects, versionKey, versionPrefix } from './schema-bucket.js';

const entry = (key: string, value: unknown) => ({ key, value: JSON.stringify(value), revision: 1 });
const version = (n: number) => ({ schema: { title: `v${n}` }, createdAt: `2026-12-07T00:00:0${n}Z` });

describe('schema bucket keys', () => {
  it('write the dots of a subject as = and pad version numbers so keys list in version order', () => {
    expect(versionKey('events.billing.invoice', 2)).toBe('v.events=billing=invoice.0000000002');
    expect(versionKey('events.billing.invoice', 10) > versionKey('events.billing.invoice', 9)).toBe(true);
    expect(versionKey('events.a', 1).startsWith(versionPrefix('events.a'))).toBe(true);
    expect(versionKey('events.ab', 1).startsWith(versionPrefix('events.a'))).toBe(false);
    expect(configKey('events.billing.invoice')).toBe('c.events=billing=invoice');
  });
});

describe('storedSubjects', () => {
  it('groups versions (ascending) and settings by subject, skipping the subjects asked and values it cannot read', () => {
    const subjects = storedSubjects(
      [
        entry(versionKey('events.a.b', 2), version(2)),
        entry(versionKey('events.a.b', 1), version(1)),
        entry(configKey('events.a.b'), { compatibility: 'full' }),
        { key: versionKey('events.a.b', 3), value: '{not json', revision: 2 },
        entry(configKey('events.settings.only'), { mode: 'warn' }),
        entry(versionKey('events.declared', 1), version(1)),
      ],
      (subject) => subject === 'events.declared',
    );
    expect([...subjects.keys()].sort()).toEqual(['events.a.b', 'events.settings.only']);
    expect(subjects.get('events.a.b')).toEqual({
      versions: [
        { n: 1, stored: version(1) },
        { n: 2, stored: version(2) },
      ],
      config: { compatibility: 'full' },
    });
    expect(subjects.get('events.settings.only')).toEqual({ versions: [], config: { mode: 'warn' } });
  });
});
