import { describe, expect, it } from '@jest/globals';
import { closeClass, LIMIT_RETRIES, retryRefusal } from './transport.js';

describe('retryRefusal', () => {
  it('always retries unavailable (the store), retries limit_exceeded a few times, never the rest', () => {
    expect(retryRefusal('unavailable', 99)).toBe(true);
    expect(retryRefusal('limit_exceeded', 0)).toBe(true);
    expect(retryRefusal('limit_exceeded', LIMIT_RETRIES - 1)).toBe(true);
    expect(retryRefusal('limit_exceeded', LIMIT_RETRIES)).toBe(false);
    for (const code of ['forbidden', 'invalid_subject', 'invalid_cursor', 'invalid_request', 'whatever', 'toString']) {
      expect(retryRefusal(code, 0)).toBe(false);
    }
  });
});

describe('closeClass', () => {
  it('renews the token after token_expired and unauthorized, moves at once on shutdown, backs off otherwise', () => {
    expect(closeClass('token_expired')).toEqual({ renewToken: true, retry: 'prompt' });
    expect(closeClass('unauthorized')).toEqual({ renewToken: true, retry: 'prompt' });
    expect(closeClass('shutdown')).toEqual({ renewToken: false, retry: 'prompt' });
    expect(closeClass('slow_consumer')).toEqual({ renewToken: false, retry: 'backoff' });
    expect(closeClass('rate_limited')).toEqual({ renewToken: false, retry: 'backoff' });
  });

  it('knows no class for a reason from a newer gateway, a missing one, or a name off Object.prototype', () => {
    for (const reason of ['moved', undefined, 'toString', 'constructor', '__proto__']) {
      expect(closeClass(reason)).toBeUndefined();
    }
  });
});
