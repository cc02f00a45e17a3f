/**
 * Fuzz properties of the pure event functions under hostile input, complementing the example and round-trip
 * properties in envelope/pattern/subject/cursor.spec.ts: parseJsonBody never throws and agrees with JSON.parse
 * within the depth bound; pattern containment never throws, is a partial order and never admits an invalid
 * pattern; the subject mapper stays bounded for huge types; a cursor can never carry a line break or NUL.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeCursor, encodeCursor, parseStart } from './cursor.js';
import { isJsonContentType, parseJsonBody } from './envelope.js';
import { allowedBy, isValidPattern, matchesSubject, patternContains } from './pattern.js';
import { eventSubject, MAX_TYPE_TOKEN_LENGTH, MAX_TYPE_TOKENS, validatePublishSubject } from './subject.js';

/** Nesting depth as parseJsonBody counts it: `[]` and `{}` are 1, a scalar 0. */
function depth(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const children = Array.isArray(v) ? v : Object.values(v as object);
  return 1 + children.reduce<number>((m, c) => Math.max(m, depth(c)), 0);
}

const validUtf8 = (b: Buffer) => Buffer.from(b.toString('utf8'), 'utf8').equals(b);

describe('parseJsonBody (fuzz)', () => {
  it('never throws on arbitrary bytes, and accepts only valid UTF-8 that JSON.parse accepts, with the same value (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
          fc
            .string({
              unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', ':', ',', '1', 'a', ' ', '\u00e9'),
              maxLength: 200,
            })
            .map((s) => Buffer.from(s)),
        ),
        fc.integer({ min: 1, max: 200 }),
        (body, max) => {
          const r = parseJsonBody(body, max);
          if (r.ok) {
            expect(validUtf8(body)).toBe(true);
            expect(r.value).toEqual(JSON.parse(body.toString('utf8')));
          } else {
            expect(typeof r.reason).toBe('string');
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('accepts any serialised JSON value exactly when its depth is within the bound (property)', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 8 }),
        fc.integer({ min: 0, max: 30 }),
        fc.integer({ min: 1, max: 40 }),
        (v, wrap, max) => {
          let text = JSON.stringify(v);
          // Wrap in extra arrays and objects to reach deeper than the generator alone does.
          for (let i = 0; i < wrap; i++) text = i % 2 ? `[${text}]` : `{"k\\"[{":${text}}`;
          const expected = JSON.parse(text) as unknown;
          const r = parseJsonBody(Buffer.from(text), max);
          expect(r.ok).toBe(depth(expected) <= max);
          if (r.ok) expect(r.value).toEqual(expected);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('never throws on a valid document with random bytes spliced in (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }), (v, at, junk) => {
        const text = Buffer.from(JSON.stringify(v));
        const k = at % (text.length + 1);
        const body = Buffer.concat([text.subarray(0, k), Buffer.from(junk), text.subarray(k)]);
        const r = parseJsonBody(body, 100);
        if (r.ok) expect(r.value).toEqual(JSON.parse(body.toString('utf8')));
      }),
      { numRuns: 3000 },
    );
  });

  it('refuses a million levels of nesting without reaching the parser (no stack overflow)', () => {
    for (const open of ['[', '{"a":']) {
      const body = Buffer.from(open.repeat(1_000_000));
      expect(parseJsonBody(body, 100)).toEqual({ ok: false, reason: expect.stringContaining('deeper') });
    }
  });

  it('isJsonContentType never throws and only accepts application/json or application/*+json (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary' }),
          fc.constant(undefined),
          fc
            .tuple(
              fc.constantFrom(
                'application/json',
                'APPLICATION/JSON',
                'application/cloudevents+json',
                'application/',
                'text/json',
                ' application/json',
              ),
              fc.string({
                unit: fc.constantFrom(';', ' ', '+', 'json', 'x', '/', '\n', '\0', '=', 'charset=utf-8'),
                maxLength: 6,
              }),
            )
            .map(([a, b]) => a + b),
        ),
        (ct) => {
          if (isJsonContentType(ct)) {
            expect((ct as string).split(';')[0].trim().toLowerCase()).toMatch(
              /^application\/([!#$%&'*+.^_`|~0-9a-z-]+\+)?json$/,
            );
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});

// Patterns over a tiny alphabet, so containment relations are frequent.
const token = fc.constantFrom('a', 'b', 'events', 'acme');
const pattern = fc
  .tuple(fc.array(fc.oneof(token, fc.constant('*')), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([ts, rest]) => (rest ? [...ts, '>'] : ts).join('.'));
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('.', '*', '>', 'a', ' ', '\n', '\0', ''), maxLength: 20 }),
);

describe('pattern containment (fuzz)', () => {
  it('never throws on arbitrary strings, and nothing invalid is ever contained or allowed (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(pattern, hostileString),
        fc.oneof(pattern, hostileString),
        fc.array(fc.oneof(pattern, hostileString), { maxLength: 4 }),
        (a, b, grants) => {
          const c = patternContains(a, b);
          if (c) expect(isValidPattern(a) && isValidPattern(b)).toBe(true);
          if (allowedBy(grants, b)) {
            expect(isValidPattern(b)).toBe(true);
            expect(grants.some((g) => patternContains(g, b))).toBe(true);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('is reflexive, transitive and antisymmetric on valid patterns (property)', () => {
    fc.assert(
      fc.property(pattern, pattern, pattern, (a, b, c) => {
        expect(patternContains(a, a)).toBe(true);
        if (patternContains(a, b) && patternContains(b, c)) expect(patternContains(a, c)).toBe(true);
        // Two patterns matching exactly the same subjects are the same pattern: no spelling widens a grant.
        if (patternContains(a, b) && patternContains(b, a)) expect(a).toBe(b);
      }),
      { numRuns: 5000 },
    );
  });

  it('a grant never admits a request that matches a subject the grant does not (property)', () => {
    const subject = fc.array(token, { minLength: 1, maxLength: 6 }).map((t) => t.join('.'));
    fc.assert(
      fc.property(
        fc.array(pattern, { minLength: 1, maxLength: 3 }),
        pattern,
        fc.array(subject, { maxLength: 30 }),
        (grants, req, subjects) => {
          if (!allowedBy(grants, req)) return;
          for (const s of subjects)
            if (matchesSubject(req, s)) expect(grants.some((g) => matchesSubject(g, s))).toBe(true);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('subject mapper (fuzz)', () => {
  it('stays bounded and valid for huge, deeply dotted or non-BMP types (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(fc.string({ unit: 'grapheme', maxLength: 300 }), { maxLength: 2000 }).map((ts) => ts.join('.')),
          fc.string({ unit: 'binary', maxLength: 5000 }),
          fc.nat({ max: 100_000 }).map((n) => '/'.repeat(n)),
          fc.nat({ max: 100_000 }).map((n) => '\ud800'.repeat(n)),
        ),
        (type) => {
          const s = eventSubject('events', 'acme', type);
          expect(s.length).toBeLessThanOrEqual('events.acme.'.length + MAX_TYPE_TOKENS * (MAX_TYPE_TOKEN_LENGTH + 1));
          expect(validatePublishSubject(s, 'events')).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('cursor codec (fuzz)', () => {
  it('no decodable cursor holds a character that could break an SSE field or a header (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 70 }),
          fc.string({ unit: fc.constantFrom('a', '_', '1', '\r', '\n', '\0', ' ', ':'), maxLength: 20 }),
        ),
        (s) => {
          const c = decodeCursor(s);
          if (c !== null) expect(s).toMatch(/^[0-9a-z]+_[0-9]+$/);
          if (/[\r\n\0 :]/.test(s)) expect(c).toBeNull();
          if (/[\r\n\0]/.test(s)) expect(parseStart(s)).toBeNull();
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('every encoded cursor is short and plain (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-z]{1,16}$/), fc.nat({ max: Number.MAX_SAFE_INTEGER }), (epoch, seq) => {
        const s = encodeCursor({ epoch, seq });
        expect(s).toMatch(/^[0-9a-z]{1,16}_[0-9]{1,16}$/);
      }),
    );
  });
});
