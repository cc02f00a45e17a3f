import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { decodeCursor, encodeCursor, parseStart } from './cursor.js';

describe('cursor codec', () => {
  it('encodes epoch_seq', () => {
    expect(encodeCursor({ epoch: 'm3x9k2', seq: 1234 })).toBe('m3x9k2_1234');
    expect(encodeCursor({ epoch: '0', seq: 0 })).toBe('0_0');
    expect(encodeCursor({ epoch: 'a'.repeat(16), seq: Number.MAX_SAFE_INTEGER })).toBe(
      `${'a'.repeat(16)}_9007199254740991`,
    );
  });

  it.each([
    [{ epoch: '', seq: 1 }],
    [{ epoch: 'A', seq: 1 }],
    [{ epoch: 'a_b', seq: 1 }],
    [{ epoch: 'a'.repeat(17), seq: 1 }],
    [{ epoch: 'a', seq: -1 }],
    [{ epoch: 'a', seq: 1.5 }],
    [{ epoch: 'a', seq: Number.NaN }],
    [{ epoch: 'a', seq: Number.MAX_SAFE_INTEGER + 1 }],
  ])('refuses to encode %j', (c) => {
    expect(() => encodeCursor(c)).toThrow(RangeError);
  });

  it.each([
    ['abc_0', { epoch: 'abc', seq: 0 }],
    ['abc_42', { epoch: 'abc', seq: 42 }],
    ['0123456789abcdef_9007199254740991', { epoch: '0123456789abcdef', seq: Number.MAX_SAFE_INTEGER }],
  ])('decodes %j', (s, expected) => {
    expect(decodeCursor(s)).toEqual(expected);
  });

  it.each([
    [''],
    ['abc'],
    ['abc_'],
    ['_1'],
    ['abc_01'], // leading zero
    ['abc_00'],
    ['abc_-1'],
    ['abc_+1'],
    ['abc_1.0'],
    ['abc_1e3'],
    ['abc_ 1'],
    ['abc_1 '],
    [' abc_1'],
    ['abc_1\n'],
    ['abc_1\r\n'],
    ['abc_1\u0000'],
    ['ABC_1'],
    ['ab-c_1'],
    ['abc_1_2'],
    ['é_1'],
    ['abc_１'], // full-width digit
    ['abc_9007199254740992'], // MAX_SAFE_INTEGER + 1
    ['abc_9999999999999999'],
    ['abc_12345678901234567'], // 17 digits
    ['a'.repeat(17) + '_1'],
    ['a_' + '1'.repeat(70)],
  ])('refuses %j', (s) => {
    expect(decodeCursor(s)).toBeNull();
  });

  it.each([[undefined], [null], [42], [{ epoch: 'a', seq: 1 }], [['a_1']], [true]])(
    'refuses the non-string %j',
    (v) => {
      expect(decodeCursor(v)).toBeNull();
    },
  );

  it('round-trips (property)', () => {
    const epoch = fc.stringMatching(/^[0-9a-z]{1,16}$/);
    fc.assert(
      fc.property(epoch, fc.nat({ max: Number.MAX_SAFE_INTEGER }), (e, seq) => {
        expect(decodeCursor(encodeCursor({ epoch: e, seq }))).toEqual({ epoch: e, seq });
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws and only accepts canonical encodings (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary-ascii' }), fc.anything()), (s) => {
        const c = decodeCursor(s);
        if (c !== null) expect(encodeCursor(c)).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseStart', () => {
  it('accepts earliest and latest', () => {
    expect(parseStart('earliest')).toEqual({ kind: 'earliest' });
    expect(parseStart('latest')).toEqual({ kind: 'latest' });
  });

  it.each([
    ['2026-11-26T17:00:00Z', Date.UTC(2026, 10, 26, 17, 0, 0)],
    ['2026-11-26t17:00:00z', Date.UTC(2026, 10, 26, 17, 0, 0)],
    ['2026-11-26T17:00:00.123Z', Date.UTC(2026, 10, 26, 17, 0, 0, 123)],
    ['2026-11-26T17:00:00.1Z', Date.UTC(2026, 10, 26, 17, 0, 0, 100)],
    ['2026-11-26T17:00:00.123999999Z', Date.UTC(2026, 10, 26, 17, 0, 0, 123)], // cut, not rounded up
    ['2026-11-26T19:00:00+02:00', Date.UTC(2026, 10, 26, 17, 0, 0)],
    ['2026-11-26T12:30:00-04:30', Date.UTC(2026, 10, 26, 17, 0, 0)],
    ['2026-11-26T17:00:00+00:00', Date.UTC(2026, 10, 26, 17, 0, 0)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
    ['2016-12-31T23:59:60Z', Date.UTC(2017, 0, 1)], // leap second lands on the next minute
    ['1970-01-01T00:00:00Z', 0],
    ['0050-01-01T00:00:00Z', new Date('0050-01-01T00:00:00.000Z').getTime()], // not 1950
  ])('%j → a time', (s, ms) => {
    expect(parseStart(s)).toEqual({ kind: 'time', ms });
  });

  it.each([
    [''],
    ['now'],
    ['EARLIEST'],
    [' earliest'],
    ['2026-11-26'], // date only
    ['2026-11-26T17:00'], // no seconds
    ['2026-11-26T17:00:00'], // no offset
    ['2026-11-26 17:00:00Z'],
    ['2026-13-01T00:00:00Z'],
    ['2026-00-01T00:00:00Z'],
    ['2026-02-29T00:00:00Z'], // not a leap year
    ['1900-02-29T00:00:00Z'],
    ['2026-04-31T00:00:00Z'],
    ['2026-01-00T00:00:00Z'],
    ['2026-01-01T24:00:00Z'],
    ['2026-01-01T00:60:00Z'],
    ['2026-01-01T00:00:61Z'],
    ['2026-01-01T00:00:00+24:00'],
    ['2026-01-01T00:00:00+02:60'],
    ['2026-01-01T00:00:00+0200'],
    ['2026-01-01T00:00:00.Z'],
    ['2026-01-01T00:00:00,5Z'],
    ['2026-01-01T00:00:00Z\n'],
    ['2026-01-01T00:00:00Z '],
    ['+002026-01-01T00:00:00Z'],
    ['Thu, 26 Nov 2026 17:00:00 GMT'],
    ['1764176400000'],
    ['2026-１1-26T17:00:00Z'],
  ])('refuses %j', (s) => {
    expect(parseStart(s)).toBeNull();
  });

  it.each([[undefined], [null], [0], [Date.now()], [{}]])('refuses the non-string %j', (v) => {
    expect(parseStart(v)).toBeNull();
  });

  it('agrees with Date.parse on valid RFC 3339 times (property)', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
        (d) => {
          const iso = d.toISOString();
          expect(parseStart(iso)).toEqual({ kind: 'time', ms: d.getTime() });
        },
      ),
    );
  });

  it('never throws (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.anything()), (s) => {
        parseStart(s);
      }),
    );
  });
});
