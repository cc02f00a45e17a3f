/** The HTTP edge of ingest: every IngestError code with its status, in one exhaustive table. */
import { ApiError } from '../common/api-error.js';
import type { IngestErrorCode } from '../protocol/errors.js';
import { IngestError } from './ingest.errors.js';

const STATUS = {
  unknown_source: 404,
  missing_signature: 401,
  invalid_signature: 401,
  timestamp_out_of_tolerance: 401,
  invalid_payload: 400,
  invalid_subject: 400,
  forbidden: 403,
  payload_too_large: 413,
  unavailable: 503,
} as const satisfies Record<IngestErrorCode, number>;

/** How long a provider is asked to wait before retrying an event the store could not take. */
const RETRY_AFTER_SECONDS = '2';

export function ingestRefusal(err: IngestError): ApiError {
  const headers: Record<string, string> = err.code === 'unavailable' ? { 'Retry-After': RETRY_AFTER_SECONDS } : {};
  return new ApiError(STATUS[err.code], err.code, err.message, headers);
}

/** An error the ingest edge answers itself (as an ApiError), or undefined for anything unexpected. */
export function asApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof IngestError) return ingestRefusal(err);
  return undefined;
}
