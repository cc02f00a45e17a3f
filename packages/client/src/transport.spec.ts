import { describe, expect, it } from '@jest/globals';
import { LIMIT_RETRIES, retryRefusal } from './transport.js';

describe('retryRefusal', () => {
  it('always retries unavailable (the store), retries limit_exceeded a few times, never the rest', () => {
    expect(retryRefusal('unavailable', 99)).toBe(true);
    expect(retryRefusal('limit_exceeded', 0)).toBe(true);
    expect(retryRefusal('limit_exceeded', LIMIT_RETRIES - 1)).toBe(true);
    expect(retryRefusal('limit_exceeded', LIMIT_RETRIES)).toBe(false);
    for (const code of ['forbidden', 'invalid_subject', 'invalid_cursor', 'invalid_request', 'whatever']) {
      expect(retryRefusal(code, 0)).toBe(false);
    }
  });
});
