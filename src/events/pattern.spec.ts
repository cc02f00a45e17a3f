import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  PatternIndex,
  allowedBy,
  coveringPattern,
  isValidPattern,
  matchesSubject,
  patternContains,
  subjectMatcher,
} from './pattern.js';

describe('isValidPattern', () => {
  it.each([
    ['events', true],
    ['events.>', true],
    ['events.*', true],
    ['*.*.x', true],
    ['>', true],
    ['*', true],
    ['a-b_C9.*.>', true],
    ['', false],
    ['.', false],
    ['events.', false],
    ['.events', false],
    ['events..acme', false],
    ['events.>.x', false],
    ['>.x', false],
    ['events.a*', false],
    ['events.>>', false],
    ['events.**', false],
    ['events.a b', false],
    ['events.é', false],
    ['events.a\n', false],
    ['events.a\u0000', false],
  ])('%j → %j', (p, ok) => {
    expect(isValidPattern(p)).toBe(ok);
  });
  it('limits tokens and length', () => {
    expect(isValidPattern(Array(32).fill('a').join('.'))).toBe(true);
    expect(isValidPattern(Array(33).fill('a').join('.'))).toBe(false);
    expect(isValidPattern('a'.repeat(1024))).toBe(true);
    expect(isValidPattern('a'.repeat(1025))).toBe(false);
  });
  it('refuses non-strings', () => {
    expect(isValidPattern(undefined as unknown as string)).toBe(false);
    expect(isValidPattern(['a'] as unknown as string)).toBe(false);
  });
});

describe('matchesSubject', () => {
  it.each([
    ['events.>', 'events.acme.invoice.paid', true],
    ['events.>', 'events.acme', true],
    ['events.>', 'events', false],
    ['>', 'events', true],
    ['>', 'a.b.c', true],
    ['*', 'events', true],
    ['*', 'events.acme', false],
    ['events.*', 'events.acme', true],
    ['events.*', 'events.acme.x', false],
    ['events.*', 'events', false],
    ['events.*.paid', 'events.acme.paid', true],
    ['events.*.paid', 'events.acme.created', false],
    ['events.acme', 'events.acme', true],
    ['events.acme', 'events.acm', false],
    ['events.acm', 'events.acme', false],
    ['events.acme', 'events.acme.x', false],
    ['events.acme.x', 'events.acme', false],
    ['events.acme.>', 'events.acmex.y', false],
    ['events.*.>', 'events.a.b', true],
    ['events.*.>', 'events.a', false],
    ['events.*', 'events.', false], // a wildcard never matches an empty token
    ['events.>', 'events.', false],
    ['Events.>', 'events.a', false],
  ])('%j ~ %j → %j', (p, s, ok) => {
    expect(matchesSubject(p, s)).toBe(ok);
    expect(subjectMatcher([p])(s)).toBe(ok);
  });

  it('subjectMatcher of several patterns matches what any one of them matches', () => {
    const m = subjectMatcher(['events.a.>', 'events.*.paid', 'events.b']);
    expect(['events.a.x', 'events.z.paid', 'events.b'].map(m)).toEqual([true, true, true]);
    expect(['events.a', 'events.z.created', 'events.b.x', 'events..paid', 'events.a.'].map(m)).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });
});

// [outer, inner, outer contains inner]
const containment: [string, string, boolean][] = [
  ['events.>', 'events.acme.>', true],
  ['events.acme.>', 'events.>', false],
  ['events.>', 'events.>', true],
  ['events.acme', 'events.acme', true],
  ['events.*', 'events.*', true],
  ['>', '>', true],
  ['>', 'events', true],
  ['>', 'events.*.>', true],
  ['events', '>', false],
  ['events.*', 'events.>', false],
  ['events.>', 'events.*', true],
  ['events.>', 'events.*.x', true],
  ['events.*.x', 'events.>', false],
  ['events.*', 'events.acme', true],
  ['events.acme', 'events.*', false],
  ['events.>', 'events', false], // `>` needs at least one token
  ['events.*', 'events', false],
  ['events', 'events.*', false],
  ['events', 'events.>', false],
  ['*', 'events', true],
  ['*', '*', true],
  ['*', '>', false],
  ['>', '*', true],
  ['*.*', 'events.>', false],
  ['*.>', 'events.>', true],
  ['*.>', 'events.acme', true],
  ['*.>', 'events', false],
  ['events.*.*', 'events.>', false],
  ['events.*.>', 'events.*.*', true],
  ['events.*.>', 'events.>', false],
  ['events.*.x', 'events.acme.x', true],
  ['events.*.x', 'events.acme.y', false],
  ['events.*.x', 'events.*.x', true],
  ['events.*.x', 'events.*.*', false],
  ['events.acme.>', 'events.acme.*.y', true],
  ['events.acme.>', 'events.*.x', false],
  ['events.acme.>', 'events.acme', false],
  ['events.acme.>', 'events.acmex.>', false],
  ['events.acme', 'events.acme.x', false],
  ['events.acme.x', 'events.acme', false],
  ['a.*.c', 'a.b.c', true],
  ['a.*.c', 'a.b.c.d', false],
  ['a.>', 'a.b.c.d.e.f', true],
  ['a.b.c.>', 'a.b.>', false],
  ['a.b.>', 'a.b.c.>', true],
  ['*.*.*', '*.*', false],
  ['*.*', '*.*.*', false],
  // invalid on either side: never contained
  ['events.>', 'events..acme', false],
  ['events.>', 'events.acme.', false],
  ['>', '.events', false],
  ['events..>', 'events..x', false],
  ['', '', false],
];

describe('patternContains', () => {
  it.each(containment)('%j ⊇ %j → %j', (outer, inner, expected) => {
    expect(patternContains(outer, inner)).toBe(expected);
  });
});

describe('allowedBy', () => {
  it('needs some grant containing the pattern', () => {
    expect(allowedBy(['events.acme.>', 'events.billing.*'], 'events.billing.x')).toBe(true);
    expect(allowedBy(['events.acme.>', 'events.billing.*'], 'events.acme.a.b')).toBe(true);
    expect(allowedBy(['events.acme.>', 'events.billing.*'], 'events.billing.>')).toBe(false);
    expect(allowedBy([], 'events.>')).toBe(false);
    // The union of two grants is not consulted as a whole: each pattern must fit in one grant.
    expect(allowedBy(['events.a', 'events.b'], 'events.*')).toBe(false);
  });
});

// Brute force over a small alphabet. Patterns use tokens a, b, *, > and have 1..4 tokens. Subjects use a, b and
// c (a token no pattern names) and have 1..5 tokens. If `outer` does not contain `inner`, a counterexample exists
// among these subjects (at most one token longer than the longer pattern; c stands for "any other token"), so
// "every enumerated subject matched by inner is matched by outer" is exactly containment.
function allPatterns(maxLen: number): string[] {
  const out: string[] = [];
  const build = (prefix: string[], len: number) => {
    if (prefix.length === len - 1) {
      for (const last of ['a', 'b', '*', '>']) out.push([...prefix, last].join('.'));
      return;
    }
    for (const t of ['a', 'b', '*']) build([...prefix, t], len);
  };
  for (let len = 1; len <= maxLen; len++) build([], len);
  return out;
}
function allSubjects(maxLen: number): string[] {
  let level = [''];
  const out: string[] = [];
  for (let len = 1; len <= maxLen; len++) {
    level = level.flatMap((p) => ['a', 'b', 'c'].map((t) => (p ? `${p}.${t}` : t)));
    out.push(...level);
  }
  return out;
}

describe('containment against brute force', () => {
  const patterns = allPatterns(4);
  const subjects = allSubjects(5);
  const matched = new Map(patterns.map((p) => [p, subjects.map((s) => matchesSubject(p, s))]));

  it('enumerates what it should', () => {
    expect(patterns).toHaveLength(4 + 12 + 36 + 108);
    expect(subjects).toHaveLength(3 + 9 + 27 + 81 + 243);
  });

  it('patternContains equals semantic containment for every pair (exhaustive)', () => {
    let checked = 0;
    let containing = 0;
    for (const outer of patterns) {
      const mo = matched.get(outer) as boolean[];
      for (const inner of patterns) {
        const mi = matched.get(inner) as boolean[];
        let semantic = true;
        for (let k = 0; k < subjects.length; k++) {
          if (mi[k] && !mo[k]) {
            semantic = false;
            break;
          }
        }
        if (patternContains(outer, inner) !== semantic) {
          throw new Error(`patternContains(${outer}, ${inner}) should be ${semantic}`);
        }
        checked++;
        if (semantic) containing++;
      }
    }
    expect(checked).toBe(160 * 160);
    // Both answers occur often, so the comparison is not vacuous.
    expect(containing).toBeGreaterThan(1000);
    expect(checked - containing).toBeGreaterThan(1000);
  });

  it('matchesSubject agrees with a reference implementation', () => {
    const reference = (p: string, s: string): boolean => {
      const pt = p.split('.');
      const st = s.split('.');
      for (let k = 0; k < pt.length; k++) {
        if (pt[k] === '>') return st.length > k;
        if (k >= st.length) return false;
        if (pt[k] !== '*' && pt[k] !== st[k]) return false;
      }
      return pt.length === st.length;
    };
    for (const p of patterns) for (const s of subjects) expect(matchesSubject(p, s)).toBe(reference(p, s));
  });

  it('subjectMatcher agrees with matchesSubject for every pattern and subject, empty tokens included', () => {
    const odd = ['', '.', 'a.', '.a', 'a..b', 'a.b.', 'a.b..c', 'ab', 'a.bc', 'abc.d'];
    let hits = 0;
    for (const p of patterns) {
      const m = subjectMatcher([p]);
      for (const s of [...subjects, ...odd]) {
        if (m(s) !== matchesSubject(p, s)) throw new Error(`subjectMatcher([${p}])(${s}) should be ${!m(s)}`);
        if (m(s)) hits++;
      }
    }
    expect(hits).toBeGreaterThan(1000);
  });
});

// Random valid patterns and subjects generated to match a given pattern.
const literal = fc.constantFrom('a', 'b', 'c', 'acme', 'x-y', 'A_9');
const patternArb = fc
  .tuple(
    fc.array(fc.oneof(literal, fc.constant('*')), { minLength: 0, maxLength: 6 }),
    fc.oneof(literal, fc.constant('*'), fc.constant('>')),
  )
  .map(([head, last]) => [...head, last].join('.'));

/** A subject matched by pattern p: each `*` → a random literal, `>` → 1..4 random literals. */
function subjectFor(p: string): fc.Arbitrary<string> {
  const parts = p.split('.').map((t) => {
    if (t === '*') return literal;
    if (t === '>')
      return fc
        .array(fc.oneof(literal, fc.constantFrom('zz', 'q1')), { minLength: 1, maxLength: 4 })
        .map((a) => a.join('.'));
    return fc.constant(t);
  });
  return fc.tuple(...parts).map((a) => a.join('.'));
}

describe('containment soundness (property)', () => {
  it('if patternContains(a, b), every subject matched by b is matched by a', () => {
    fc.assert(
      fc.property(
        patternArb,
        patternArb.chain((b) => fc.tuple(fc.constant(b), fc.array(subjectFor(b), { minLength: 1, maxLength: 10 }))),
        (a, [b, subjects]) => {
          for (const s of subjects) expect(matchesSubject(b, s)).toBe(true);
          if (patternContains(a, b)) for (const s of subjects) expect(matchesSubject(a, s)).toBe(true);
          // Containment of a pattern in itself, and in `>`.
          expect(patternContains(b, b)).toBe(true);
          expect(patternContains('>', b)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });
  it('every widening of a pattern contains it', () => {
    // Widen a pattern step by step (literal → *, tail → >): each widening must contain the original.
    fc.assert(
      fc.property(patternArb, fc.array(fc.nat(), { maxLength: 4 }), (p, cuts) => {
        let wide = p.split('.');
        for (const c of cuts) {
          const k = c % wide.length;
          if (c % 3 === 0) wide = [...wide.slice(0, k), '>'];
          else if (wide[k] !== '>') wide[k] = '*';
        }
        const w = wide.join('.');
        expect(patternContains(w, p)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('coveringPattern', () => {
  it.each([
    [['events.acme.>'], 'events.acme.>'],
    [['events.a', 'events.a'], 'events.a'],
    [['events.>', 'events.acme.>'], 'events.>'],
    [['events.acme.x', 'events.*.x'], 'events.*.x'],
    [['events.acme.x', 'events.billing.x'], 'events.*.x'],
    [['events.acme.x', 'events.billing.y'], 'events.*.*'],
    [['events.acme.>', 'events.billing.>'], 'events.*.>'],
    [['events.acme.x', 'events.acme.>'], 'events.acme.>'],
    [['events.acme.x', 'events.billing.>'], 'events.*.>'],
    [['events.acme.x', 'events.acme.x.y'], 'events.acme.>'],
    [['events.acme', 'events.acme.x'], 'events.>'],
    [['events', 'events.x'], '>'],
    [['a.b.c', 'a.x.c.d'], 'a.*.>'],
    [['*', 'events'], '*'],
  ])('%j → %j', (input, expected) => {
    expect(coveringPattern(input)).toBe(expected);
  });
  it('refuses an empty list', () => {
    expect(() => coveringPattern([])).toThrow(RangeError);
  });
  it('is a valid pattern matching every subject any input matches (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          patternArb.chain((p) => fc.tuple(fc.constant(p), fc.array(subjectFor(p), { minLength: 1, maxLength: 5 }))),
          { minLength: 1, maxLength: 6 },
        ),
        (inputs) => {
          const cover = coveringPattern(inputs.map(([p]) => p));
          expect(isValidPattern(cover)).toBe(true);
          for (const [p, subjects] of inputs) {
            expect(patternContains(cover, p)).toBe(true);
            for (const s of subjects) expect(matchesSubject(cover, s)).toBe(true);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
  it('is exactly the pattern when the inputs are all identical', () => {
    fc.assert(
      fc.property(patternArb, fc.integer({ min: 1, max: 4 }), (p, n) => {
        expect(coveringPattern(Array(n).fill(p))).toBe(p);
      }),
    );
  });
});

describe('PatternIndex', () => {
  it('routes a subject to the values of matching patterns, each value once', () => {
    const idx = new PatternIndex<string>();
    expect(idx.add('events.>', 'v1')).toBe(true);
    expect(idx.add('events.acme.*', 'v1')).toBe(true); // same value, second pattern
    expect(idx.add('events.acme.*', 'v1')).toBe(false); // same pair again: no-op
    idx.add('events.acme.paid', 'v2');
    idx.add('events.*.paid', 'v3');
    idx.add('>', 'v4');
    idx.add('events', 'v5');
    idx.add('events.billing.>', 'v6');
    expect(idx.size).toBe(7);
    expect(idx.match('events.acme.paid')).toEqual(new Set(['v1', 'v2', 'v3', 'v4']));
    expect(idx.match('events.acme.created')).toEqual(new Set(['v1', 'v4']));
    expect(idx.match('events')).toEqual(new Set(['v4', 'v5']));
    expect(idx.match('events.billing')).toEqual(new Set(['v1', 'v4']));
    expect(idx.match('events.billing.x.y')).toEqual(new Set(['v1', 'v4', 'v6']));
    expect(idx.match('other')).toEqual(new Set(['v4']));

    expect(idx.remove('events.>', 'v1')).toBe(true);
    expect(idx.remove('events.>', 'v1')).toBe(false);
    expect(idx.remove('events.nothing', 'v1')).toBe(false);
    expect(idx.remove('events.acme.*', 'v9')).toBe(false);
    expect(idx.size).toBe(6);
    expect(idx.match('events.acme.created')).toEqual(new Set(['v1', 'v4'])); // still under events.acme.*
    expect(idx.match('events.billing')).toEqual(new Set(['v4']));
  });

  it('forEachMatch reports each value once and tolerates re-entrant use', () => {
    const idx = new PatternIndex<number>();
    idx.add('a.>', 1);
    idx.add('a.*', 1);
    idx.add('a.b', 2);
    const seen: number[] = [];
    const inner: number[][] = [];
    idx.forEachMatch('a.b', (v) => {
      seen.push(v);
      const nested: number[] = [];
      idx.forEachMatch('a.b.c', (w) => nested.push(w));
      inner.push(nested);
      idx.add('a.b', 3); // mutating during a callback does not disturb this walk
    });
    expect(seen.sort()).toEqual([1, 2]);
    expect(inner.every((n) => n.length === 1 && n[0] === 1)).toBe(true);
    const again: number[] = [];
    idx.forEachMatch('a.b', (v) => again.push(v));
    expect(again.sort()).toEqual([1, 2, 3]);
  });

  it('prunes nodes so an emptied index is empty', () => {
    const idx = new PatternIndex<string>();
    const patterns = ['a.b.c', 'a.*.c', 'a.>', '>', '*', 'a.b.c.>', 'a'];
    for (const p of patterns) idx.add(p, 'x');
    for (const p of patterns) expect(idx.remove(p, 'x')).toBe(true);
    expect(idx.size).toBe(0);
    expect(idx.match('a.b.c').size).toBe(0);
    // The root holds nothing any more.
    const root = (idx as unknown as { root: { literal?: Map<string, unknown>; star?: unknown; rest?: unknown } }).root;
    expect(root.literal).toBeUndefined();
    expect(root.star).toBeUndefined();
    expect(root.rest).toBeUndefined();
  });

  it('equals the brute-force filter over registered patterns (property)', () => {
    const op = fc.record({ add: fc.boolean(), pattern: patternArb, value: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 40 }),
        fc.array(
          patternArb.chain((p) => subjectFor(p)),
          { minLength: 1, maxLength: 10 },
        ),
        (ops, subjects) => {
          const idx = new PatternIndex<number>();
          const pairs = new Map<string, { pattern: string; value: number }>();
          for (const o of ops) {
            const key = `${o.pattern} ${o.value}`;
            if (o.add) {
              expect(idx.add(o.pattern, o.value)).toBe(!pairs.has(key));
              pairs.set(key, o);
            } else {
              expect(idx.remove(o.pattern, o.value)).toBe(pairs.has(key));
              pairs.delete(key);
            }
          }
          expect(idx.size).toBe(pairs.size);
          // Also probe subjects built from registered patterns, so matches are common.
          const probes = [
            ...subjects,
            ...[...pairs.values()].map((p) => p.pattern.replace(/\*/g, 'a').replace(/>/g, 'b.c')),
          ];
          for (const s of probes) {
            const expected = new Set(
              [...pairs.values()].filter((p) => matchesSubject(p.pattern, s)).map((p) => p.value),
            );
            expect(idx.match(s)).toEqual(expected);
            const viaCallback = new Set<number>();
            let calls = 0;
            idx.forEachMatch(s, (v) => {
              calls++;
              viaCallback.add(v);
            });
            expect(viaCallback).toEqual(expected);
            expect(calls).toBe(expected.size);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
