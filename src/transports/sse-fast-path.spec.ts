import { describe, expect, it } from '@jest/globals';
import { fastStreamQuery } from './sse-fast-path.js';

describe('fastStreamQuery', () => {
  it('takes GET /v1/stream with or without a query string', () => {
    expect(fastStreamQuery('GET', '/v1/stream')).toBe('');
    expect(fastStreamQuery('GET', '/v1/stream?subject=events.%3E&cursor=a_1')).toBe('subject=events.%3E&cursor=a_1');
  });

  it('leaves every other form to Express', () => {
    for (const [method, url] of [
      ['HEAD', '/v1/stream?subject=a'],
      ['POST', '/v1/stream'],
      ['GET', '/v1/stream/'],
      ['GET', '/v1/streams'],
      ['GET', '/V1/stream'],
      ['GET', undefined],
    ] as const) {
      expect(fastStreamQuery(method, url)).toBeUndefined();
    }
  });
});
