import { describe, expect, it } from '@jest/globals';
import { isStreamSubject, narrowFilter } from './subject-filter.js';

describe('narrowFilter', () => {
  it.each([
    ['events.>', 'events', 'events.>'],
    ['events.acme.>', 'events', 'events.acme.>'],
    ['events.*.created', 'events', 'events.*.created'],
    ['>', 'events', 'events.>'],
    ['*.acme.>', 'events', 'events.acme.>'],
    ['*.*', 'events', 'events.*'],
    ['>', 'hs.events', 'hs.events.>'],
    ['hs.>', 'hs.events', 'hs.events.>'],
    ['*.events.a', 'hs.events', 'hs.events.a'],
    ['hs.*.a.b', 'hs.events', 'hs.events.a.b'],
  ])('%s inside %s.> is %s', (filter, prefix, want) => {
    expect(narrowFilter(filter, prefix)).toBe(want);
  });

  it.each([
    ['other.>', 'events'],
    ['events', 'events'],
    ['*', 'events'],
    ['hs.other.>', 'hs.events'],
    ['hs.events', 'hs.events'],
    ['hs.*', 'hs.events'],
  ])('%s cannot match anything in %s.>', (filter, prefix) => {
    expect(narrowFilter(filter, prefix)).toBeNull();
  });

  it.each(['', 'events..a', 'events.>.a', '.events', 'events.'])('refuses the malformed pattern %j', (filter) => {
    expect(() => narrowFilter(filter, 'events')).toThrow(RangeError);
  });
});

describe('isStreamSubject', () => {
  it('accepts concrete subjects under the prefix only', () => {
    expect(isStreamSubject('events.acme.invoice.paid', 'events')).toBe(true);
    expect(isStreamSubject('hs.events.a', 'hs.events')).toBe(true);
    for (const s of [
      'events',
      'events.',
      'events.*',
      'events.a.>',
      'events..a',
      'other.a',
      'eventsx.a',
      'events.a b',
    ]) {
      expect({ s, ok: isStreamSubject(s, 'events') }).toEqual({ s, ok: false });
    }
  });
});
