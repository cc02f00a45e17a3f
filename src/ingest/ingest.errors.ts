/**
 * Refusals of the ingest service, by code. Pure: no HTTP here. The HTTP edge (ingest-refusal.ts) gives each
 * code its status and headers.
 */
import type { IngestErrorCode } from '../protocol/errors.js';
import type { SchemaViolation } from '../schemas/schema-validator.js';

export type { IngestErrorCode };

export class IngestError extends Error {
  constructor(
    readonly code: IngestErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'IngestError';
  }
}

/** What schema enforcement refused: a whole `POST /v1/events` batch (nothing stored), or one webhook delivery. */
export type SchemaViolationScope = 'batch' | 'event';

/** Events that do not match their subject's schema in `enforce` mode, with every violation found. */
export class SchemaViolationError extends Error {
  readonly code = 'schema_violation';

  constructor(
    readonly scope: SchemaViolationScope,
    message: string,
    readonly errors: SchemaViolation[],
  ) {
    super(message);
    this.name = 'SchemaViolationError';
  }
}
