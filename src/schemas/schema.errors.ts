/** Refusals of the schema registry, with stable codes; the HTTP edge maps them to statuses. */
export type SchemaErrorCode =
  | 'invalid_schema'
  | 'invalid_subject'
  | 'invalid_request'
  | 'not_found'
  | 'read_only'
  | 'incompatible_schema'
  | 'unavailable';

export class SchemaError extends Error {
  constructor(
    readonly code: SchemaErrorCode,
    message: string,
    /** incompatible_schema: why, one sentence each. */
    readonly reasons: string[] = [],
  ) {
    super(message);
    this.name = 'SchemaError';
  }
}
