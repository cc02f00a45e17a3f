import { afterAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { matchesSubject } from '../../events/pattern.js';
import { subjectPrefilter } from './subject-prefilter.js';

// SQLite in memory: the pre-filter is only useful if SQLite's own GLOB agrees with it.
const db = new Database(':memory:');
const glob = db.prepare<[string, string], { m: number }>('SELECT ? GLOB ? AS m');
afterAll(() => {
  db.close();
});

const passes = (pattern: string, subject: string): boolean => {
  const pre = subjectPrefilter(pattern);
  return pre.kind === 'literal' ? pre.subject === subject : glob.get(subject, pre.glob)!.m === 1;
};

describe('subjectPrefilter', () => {
  it('uses the subject index for literal patterns and a GLOB otherwise', () => {
    expect(subjectPrefilter('events.acme.paid')).toEqual({ kind: 'literal', subject: 'events.acme.paid' });
    expect(subjectPrefilter('events.*.paid')).toEqual({ kind: 'glob', glob: 'events.*.paid' });
    expect(subjectPrefilter('events.acme.>')).toEqual({ kind: 'glob', glob: 'events.acme.?*' });
    expect(subjectPrefilter('>')).toEqual({ kind: 'glob', glob: '?*' });
  });

  it('escapes GLOB metacharacters in literal tokens', () => {
    const pre = subjectPrefilter('events.a[b?c*.>');
    expect(pre).toEqual({ kind: 'glob', glob: 'events.a[[]b[?]c[*].?*' });
    expect(passes('events.a[b?c*.>', 'events.a[b?c*.x')).toBe(true);
    expect(passes('events.a[b?c*.>', 'events.abbcc.x')).toBe(false);
  });

  it('never rejects a subject the exact matcher accepts (property)', () => {
    const token = fc.constantFrom('events', 'acme', 'a', 'b', 'paid', 'x_y', 'A-1', 'a*b', 'q?', '[z]');
    const subject = fc.array(token, { minLength: 1, maxLength: 6 }).map((t) => t.join('.'));
    const pattern = fc
      .tuple(fc.array(fc.oneof(token, fc.constant('*')), { minLength: 0, maxLength: 5 }), fc.boolean())
      .filter(([t, rest]) => t.length > 0 || rest)
      .map(([t, rest]) => [...t, ...(rest ? ['>'] : [])].join('.'));
    fc.assert(
      fc.property(pattern, subject, (p, s) => {
        if (matchesSubject(p, s)) expect(passes(p, s)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('is exact for literal patterns', () => {
    const token = fc.constantFrom('events', 'acme', 'a', 'paid');
    const subject = fc.array(token, { minLength: 1, maxLength: 4 }).map((t) => t.join('.'));
    fc.assert(
      fc.property(subject, subject, (p, s) => {
        expect(passes(p, s)).toBe(matchesSubject(p, s));
      }),
    );
  });
});
