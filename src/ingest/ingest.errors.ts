/**
 * Refusals of the ingest service, by code. Pure: no HTTP here. The HTTP edge (ingest-refusal.ts) gives each
 * code its status and headers.
 */
import type { IngestErrorCode } from '../protocol/errors.js';

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
