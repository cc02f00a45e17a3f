/**
 * JSON Schema 2020-12 validation with Ajv. One Ajv instance per registry; each schema version is compiled once
 * and its validate function kept, so the ingest path pays only for running it.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';

/** One problem with one event's data: `path` is a JSON pointer into that data (`''` is the data itself). */
export interface SchemaViolation {
  index: number;
  path: string;
  message: string;
}

export type CompiledSchema = (data: unknown) => boolean;

/** At most this many errors are reported per event: enough to fix it, bounded for a hostile payload. */
export const MAX_ERRORS_PER_EVENT = 20;

export class SchemaCompiler {
  private readonly ajv: Ajv2020;

  constructor() {
    // allErrors: a producer fixing a payload wants every problem at once, not one per round trip.
    // strictSchema: an unknown keyword (often a typo such as "requried") is refused at registration rather than
    // silently ignored; the stricter type checks would refuse ordinary schemas, so they stay off.
    this.ajv = new Ajv2020({
      allErrors: true,
      strictSchema: true,
      strictNumbers: true,
      strictTypes: false,
      strictTuples: false,
      strictRequired: false,
      validateFormats: true,
    });
    formats.default(this.ajv);
  }

  /** Compiles a schema, or says why it cannot be compiled (the compiler's own message). */
  compile(schema: unknown): { ok: true; validate: ValidateFunction } | { ok: false; message: string } {
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      return { ok: false, message: 'a schema must be a JSON object' };
    }
    try {
      // Versions of one subject often share an $id; Ajv would refuse a second schema under the same id.
      const { $id: _id, ...rest } = schema as Record<string, unknown>;
      const validate = this.ajv.compile(rest);
      // Ajv caches by schema object: forgetting it keeps refused registrations from piling up in memory.
      this.ajv.removeSchema(rest);
      return { ok: true, validate };
    } catch (err) {
      return { ok: false, message: (err as Error).message };
    }
  }
}

/** Ajv's errors as `{index, path, message}`, the path pointing at the offending value (a missing property's name included). */
export function violationsOf(errors: ErrorObject[] | null | undefined, index: number): SchemaViolation[] {
  const out: SchemaViolation[] = [];
  for (const e of errors ?? []) {
    if (out.length >= MAX_ERRORS_PER_EVENT) break;
    let path = e.instancePath;
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'required' && typeof params.missingProperty === 'string') {
      path += `/${escapePointer(params.missingProperty)}`;
    } else if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
      path += `/${escapePointer(params.additionalProperty)}`;
    }
    out.push({ index, path, message: e.message ?? `fails "${e.keyword}"` });
  }
  return out;
}

/** One JSON-pointer token (RFC 6901): `~` → `~0`, `/` → `~1`. */
export function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}
