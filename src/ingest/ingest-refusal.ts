/** The HTTP edge of ingest: every IngestError code, and each kind of schema violation, with its status. */
import { ApiError } from '../common/api-error.js';
import type { IngestErrorCode } from '../protocol/errors.js';
import { IngestError, SchemaViolationError, type SchemaViolationScope } from './ingest.errors.js';

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

/**
 * A batch that breaks its schema is a bad request from a first-party producer, like any other invalid item (400);
 * a webhook is a well-formed delivery whose content the gateway will not process (422).
 */
const VIOLATION_STATUS = { batch: 400, event: 422 } as const satisfies Record<SchemaViolationScope, number>;

/** How long a provider is asked to wait before retrying an event the store could not take. */
const RETRY_AFTER_SECONDS = '2';

export function ingestRefusal(err: IngestError): ApiError {
  const headers: Record<string, string> = err.code === 'unavailable' ? { 'Retry-After': RETRY_AFTER_SECONDS } : {};
  return new ApiError(STATUS[err.code], err.code, err.message, headers);
}

/** The refusal lists every violation (`errors`: item index, JSON pointer, message), so a producer fixes all at once. */
export function schemaViolationRefusal(err: SchemaViolationError): ApiError {
  return new ApiError(VIOLATION_STATUS[err.scope], err.code, err.message, {}, { errors: err.errors });
}

/** An error the ingest edge answers itself (as an ApiError), or undefined for anything unexpected. */
export function asApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof IngestError) return ingestRefusal(err);
  if (err instanceof SchemaViolationError) return schemaViolationRefusal(err);
  return undefined;
}
