/** The HTTP edge of ingest: each IngestError code answers with its documented status, headers and body. */
import { describe, expect, it } from '@jest/globals';
import type { ArgumentsHost } from '@nestjs/common';
import { ApiError, ApiErrorFilter } from '../common/api-error.js';
import type { IngestErrorCode } from '../protocol/errors.js';
import { IngestError, SchemaViolationError } from './ingest.errors.js';
import { asApiError, ingestRefusal } from './ingest-refusal.js';

describe('ingestRefusal', () => {
  it.each<[IngestErrorCode, number]>([
    ['unknown_source', 404],
    ['missing_signature', 401],
    ['invalid_signature', 401],
    ['timestamp_out_of_tolerance', 401],
    ['invalid_payload', 400],
    ['invalid_subject', 400],
    ['forbidden', 403],
    ['payload_too_large', 413],
  ])('answers %s with %i and the {error, message} body, no extra header', (code, status) => {
    const answer = ingestRefusal(new IngestError(code, 'why'));
    expect(answer.getStatus()).toBe(status);
    expect(JSON.stringify(answer.getResponse())).toBe(JSON.stringify({ error: code, message: 'why' }));
    expect(answer.headers).toEqual({});
  });

  it('answers unavailable with 503 and Retry-After', () => {
    const answer = ingestRefusal(new IngestError('unavailable', 'retry'));
    expect(answer.getStatus()).toBe(503);
    expect(answer.headers).toEqual({ 'Retry-After': '2' });
    expect(answer.getResponse()).toEqual({ error: 'unavailable', message: 'retry' });
  });
});

describe('schema violations', () => {
  it.each([
    ['batch', 400],
    ['event', 422],
  ] as const)('answers a refused %s with %i schema_violation and the errors list', (scope, status) => {
    const errors = [{ index: 1, path: '/id', message: 'must be string' }];
    const answer = asApiError(new SchemaViolationError(scope, 'no match', errors));
    expect(answer?.getStatus()).toBe(status);
    expect(answer?.headers).toEqual({});
    expect(JSON.stringify(answer?.getResponse())).toBe(
      JSON.stringify({ error: 'schema_violation', message: 'no match', errors }),
    );
  });
});

describe('asApiError', () => {
  it('passes ApiErrors through, maps IngestErrors, and leaves anything else to the caller', () => {
    const api = new ApiError(408, 'request_timeout', 'slow');
    expect(asApiError(api)).toBe(api);
    expect(asApiError(new IngestError('forbidden', 'no'))?.getStatus()).toBe(403);
    expect(asApiError(new Error('boom'))).toBeUndefined();
    expect(asApiError('boom')).toBeUndefined();
  });
});

describe('ApiError', () => {
  it('keeps the 4-argument form: status, code, message, response headers', () => {
    const err = new ApiError(429, 'limit_exceeded', 'slow down', { 'Retry-After': '1' });
    expect(err.getStatus()).toBe(429);
    expect(err.headers).toEqual({ 'Retry-After': '1' });
    expect(JSON.stringify(err.getResponse())).toBe('{"error":"limit_exceeded","message":"slow down"}');
  });

  it('adds extra body fields after error and message', () => {
    const err = new ApiError(409, 'incompatible_schema', 'breaks readers', {}, { reasons: ['a field was removed'] });
    expect(JSON.stringify(err.getResponse())).toBe(
      '{"error":"incompatible_schema","message":"breaks readers","reasons":["a field was removed"]}',
    );
  });
});

/** The exception filter with the ingest edge plugged in, as bootstrap installs it (the console's demo webhook). */
describe('ApiErrorFilter with asApiError', () => {
  function answer(err: unknown) {
    const sent = {
      status: 0,
      headers: {} as Record<string, string>,
      body: undefined as unknown,
      unexpected: [] as unknown[],
    };
    const res = {
      headersSent: false,
      setHeader: (k: string, v: string) => void (sent.headers[k] = v),
      status(code: number) {
        sent.status = code;
        return this;
      },
      json: (body: unknown) => void (sent.body = body),
    };
    const host = {
      getType: () => 'http',
      switchToHttp: () => ({ getResponse: () => res }),
    } as unknown as ArgumentsHost;
    new ApiErrorFilter((e) => sent.unexpected.push(e), asApiError).catch(err, host);
    return sent;
  }

  it('answers an IngestError with its status, headers and body', () => {
    expect(answer(new IngestError('unavailable', 'the store is away'))).toEqual({
      status: 503,
      headers: { 'Retry-After': '2' },
      body: { error: 'unavailable', message: 'the store is away' },
      unexpected: [],
    });
  });

  it('still answers anything else 500 without internals, and reports it', () => {
    const boom = new Error('secret detail');
    expect(answer(boom)).toEqual({
      status: 500,
      headers: {},
      body: { error: 'internal_error', message: 'internal error' },
      unexpected: [boom],
    });
  });
});
