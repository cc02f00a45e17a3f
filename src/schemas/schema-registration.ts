/**
 * Registering a subject's next version and changing its settings, against the shared bucket. The decision: a
 * schema identical to the latest version is stored again as the next version; any other is first checked against
 * the latest under the subject's compatibility (or the one given, which then becomes the subject's). Concurrent
 * registrations each take the next free number: the create of a number another replica took fails, and the loop
 * reads and decides again, so versions have no gaps and every one was checked against its predecessor.
 */
import type { SchemaMode } from '../config/app-config.js';
import { checkCompatibility, type Compatibility } from './compatibility.js';
import {
  configKey,
  readConfig,
  type SchemaBucket,
  type StoredConfig,
  type StoredVersion,
  versionKey,
  versionPrefix,
} from './schema-bucket.js';
import { SchemaError } from './schema.errors.js';

/** A subject's compatibility until one is set. */
export const DEFAULT_COMPATIBILITY: Compatibility = 'backward';

const MAX_REGISTER_ATTEMPTS = 100;

export interface Registered {
  subject: string;
  version: number;
  compatibility: Compatibility;
  createdAt: string;
}

/** Stores `schema` (already known to compile) as the next version of `subject`. */
export async function registerVersion(
  bucket: SchemaBucket,
  subject: string,
  schema: Record<string, unknown>,
  compatibility: Compatibility | undefined,
  options: { now: () => string; isConflict: (err: unknown) => boolean },
): Promise<Registered> {
  for (let attempt = 0; attempt < MAX_REGISTER_ATTEMPTS; attempt++) {
    const [stored, config] = await Promise.all([bucket.list(versionPrefix(subject)), readConfig(bucket, subject)]);
    const mode = compatibility ?? config?.compatibility ?? DEFAULT_COMPATIBILITY;
    const latest = stored.length ? (JSON.parse(stored[stored.length - 1].value) as StoredVersion) : undefined;
    if (latest && !sameJson(latest.schema, schema)) {
      const reasons = await checkCompatibility(mode, latest.schema, schema);
      if (reasons.length) {
        throw new SchemaError(
          'incompatible_schema',
          `the schema breaks ${mode} compatibility with version ${stored.length} of ${subject}`,
          reasons,
        );
      }
    }
    const version = stored.length + 1;
    const createdAt = options.now();
    try {
      await bucket.create(versionKey(subject, version), JSON.stringify({ schema, createdAt }));
    } catch (err) {
      if (options.isConflict(err)) continue; // another registration took this number: check again
      // The store refuses values over its size limit (JetStream: max_payload) as a caller error.
      if (err instanceof RangeError)
        throw new SchemaError('invalid_schema', `the schema cannot be stored: ${err.message}`);
      throw err;
    }
    if (compatibility !== undefined && compatibility !== config?.compatibility) {
      await bucket.put(configKey(subject), JSON.stringify({ ...config, compatibility }));
    }
    return { subject, version, compatibility: mode, createdAt };
  }
  throw new SchemaError('unavailable', `too many concurrent registrations for ${subject}; retry`);
}

/** Merges `change` into the subject's stored settings (null mode: back to the ingest path's default). */
export async function configureSubject(
  bucket: SchemaBucket,
  subject: string,
  change: { compatibility?: Compatibility; mode?: SchemaMode | null },
): Promise<{ compatibility: Compatibility; mode: SchemaMode | null }> {
  const config: StoredConfig = { ...(await readConfig(bucket, subject)), ...change };
  await bucket.put(configKey(subject), JSON.stringify(config));
  return { compatibility: config.compatibility ?? DEFAULT_COMPATIBILITY, mode: config.mode ?? null };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
