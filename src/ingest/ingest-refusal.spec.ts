/** The HTTP edge of ingest: each IngestError code answers with its documented status, headers and body. */
import { describe, expect, it } from '@jest/globals';
import { ApiError } from '../common/api-error.js';
import type { IngestErrorCode } from '../protocol/errors.js';
import { IngestError } from './ingest.errors.js';
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
