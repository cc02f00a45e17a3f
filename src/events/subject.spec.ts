import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { MAX_TYPE_TOKEN_LENGTH, eventSubject, sanitizeToken, typeTokens, validatePublishSubject } from './subject.js';

describe('sanitizeToken', () => {
  it.each([
    ['invoice', 'invoice'],
    ['A-z_09', 'A-z_09'],
    ['', '_'],
    ['a b', 'a_b'],
    ['a*b>c', 'a_b_c'],
    ['a.b', 'a_b'],
    ['é', '_'],
    ['😀', '_'], // one code point (two UTF-16 units) → one `_`
    ['a\u0000b\r\n', 'a_b__'],
    ['\ud800', '_'], // a lone surrogate
  ])('%j → %j', (input, expected) => {
    expect(sanitizeToken(input)).toBe(expected);
  });
});

describe('typeTokens', () => {
  it('splits on . and /', () => {
    expect(typeTokens('invoice.paid')).toEqual(['invoice', 'paid']);
    expect(typeTokens('orders/create')).toEqual(['orders', 'create']);
    expect(typeTokens('a.b/c')).toEqual(['a', 'b', 'c']);
  });
  it('turns empty tokens into _', () => {
    expect(typeTokens('')).toEqual(['_']);
    expect(typeTokens('.')).toEqual(['_', '_']);
    expect(typeTokens('a..b/')).toEqual(['a', '_', 'b', '_']);
  });
  it('keeps at most 16 tokens', () => {
    const t = typeTokens(Array.from({ length: 40 }, (_, i) => `t${i}`).join('.'));
    expect(t).toHaveLength(16);
    expect(t[0]).toBe('t0');
    expect(t[15]).toBe('t15');
  });
  it('sanitizes wildcards', () => {
    expect(typeTokens('*.>')).toEqual(['_', '_']);
  });
  it('cuts a very long token', () => {
    const [t] = typeTokens('x'.repeat(10_000));
    expect(t).toBe('x'.repeat(MAX_TYPE_TOKEN_LENGTH));
  });
});

describe('eventSubject', () => {
  it('builds <prefix>.<source>.<type tokens>', () => {
    expect(eventSubject('events', 'acme', 'invoice.paid')).toBe('events.acme.invoice.paid');
    expect(eventSubject('events', 'github', 'pull_request.opened')).toBe('events.github.pull_request.opened');
    expect(eventSubject('events', 'shop', 'orders/create')).toBe('events.shop.orders.create');
  });
  it('sanitizes the source as one token', () => {
    expect(eventSubject('events', 'a.b', 'x')).toBe('events.a_b.x');
    expect(eventSubject('events', '', 'x')).toBe('events._.x');
    expect(eventSubject('events', '>', '*')).toBe('events._._');
  });
  it('keeps a dotted prefix as is', () => {
    expect(eventSubject('hs.events', 'acme', 'a')).toBe('hs.events.acme.a');
  });

  it('never yields a wildcard or empty token, stays under prefix.source. (property)', () => {
    const token = /^[A-Za-z0-9_-]+$/;
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.string({ unit: 'binary', maxLength: 60 }),
        fc.string({ unit: 'binary', maxLength: 300 }),
        (uType, source, bType) => {
          for (const type of [uType, bType]) {
            const s = eventSubject('events', source, type);
            const expectedHead = `events.${sanitizeToken(source)}.`;
            expect(s.startsWith(expectedHead)).toBe(true);
            const tokens = s.split('.');
            expect(tokens.length).toBeGreaterThanOrEqual(3);
            expect(tokens.length).toBeLessThanOrEqual(18);
            for (const t of tokens) expect(t).toMatch(token);
            expect(s).not.toMatch(/[*>]/);
            // The published subject is always acceptable to the publish validator when short enough.
            if (s.length <= 1024) expect(validatePublishSubject(s, 'events')).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('validatePublishSubject', () => {
  it.each([
    ['events.orders.created', true],
    ['events.orders', true],
    ['events.a-b_C9', true],
    ['events', false], // no token after the prefix
    ['events.', false],
    ['events..x', false],
    ['events.x.', false],
    ['.events.x', false],
    ['events.*', false],
    ['events.>', false],
    ['events.a.*.b', false],
    ['events.a b', false],
    ['events.é', false],
    ['events.a\n', false],
    ['eventsx.a', false],
    ['other.a', false],
    ['Events.a', false],
    ['', false],
  ])('%j → %j', (subject, ok) => {
    expect(validatePublishSubject(subject, 'events')).toBe(ok);
  });
  it('allows 18 tokens after the prefix, not 19', () => {
    expect(validatePublishSubject(`events.${Array.from({ length: 18 }, () => 'a').join('.')}`, 'events')).toBe(true);
    expect(validatePublishSubject(`events.${Array.from({ length: 19 }, () => 'a').join('.')}`, 'events')).toBe(false);
  });
  it('allows 1024 characters, not 1025', () => {
    expect(validatePublishSubject(`events.${'a'.repeat(1017)}`, 'events')).toBe(true);
    expect(validatePublishSubject(`events.${'a'.repeat(1018)}`, 'events')).toBe(false);
  });
  it('counts a dotted prefix', () => {
    expect(validatePublishSubject('hs.events.a', 'hs.events')).toBe(true);
    expect(validatePublishSubject('hs.events', 'hs.events')).toBe(false);
    expect(validatePublishSubject(`hs.events.${Array.from({ length: 18 }, () => 'a').join('.')}`, 'hs.events')).toBe(
      true,
    );
    expect(validatePublishSubject(`hs.events.${Array.from({ length: 19 }, () => 'a').join('.')}`, 'hs.events')).toBe(
      false,
    );
  });
  it('refuses a non-string', () => {
    expect(validatePublishSubject(42 as unknown as string, 'events')).toBe(false);
  });
});

describe('typeTokens truncation', () => {
  it('cuts by code points after sanitizing, whatever the surrogates', () => {
    expect(typeTokens('😀'.repeat(100))).toEqual(['_'.repeat(MAX_TYPE_TOKEN_LENGTH)]);
    expect(typeTokens(`a${'😀'.repeat(100)}`)).toEqual([`a${'_'.repeat(MAX_TYPE_TOKEN_LENGTH - 1)}`]);
    expect(typeTokens(`${'b'.repeat(63)}😀x.y`)).toEqual([`${'b'.repeat(63)}_`, 'y']);
  });
});
