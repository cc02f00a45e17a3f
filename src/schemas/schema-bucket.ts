/**
 * How the schema registry keeps its state in the event store's metadata (bucket `schemas`): version n of a
 * subject is the key `v.<subject>.<n>` (n zero-padded, so keys list in version order), written once with
 * create-if-absent; a subject's settings are the key `c.<subject>`. Subjects use `.` between tokens, which the
 * bucket uses between key parts, so `=` stands for it in keys.
 */
import type { MetadataBucket, MetadataEntry } from '../store/metadata.port.js';
import type { SchemaMode } from '../config/app-config.js';
import type { Compatibility } from './compatibility.js';
import { SchemaError } from './schema.errors.js';

/** The part of the metadata port the registry uses. */
export type SchemaBucket = Pick<MetadataBucket, 'get' | 'create' | 'put' | 'list'>;

export interface StoredVersion {
  schema: Record<string, unknown>;
  createdAt: string;
}

export interface StoredConfig {
  compatibility?: Compatibility;
  mode?: SchemaMode | null;
}

/** A subject's registered versions (ascending, possibly with gaps a reader must not expose) and settings. */
export interface StoredSubject {
  versions: { n: number; stored: StoredVersion }[];
  config?: StoredConfig;
}

const VERSION_DIGITS = 10;

const keyPart = (subject: string) => subject.replace(/\./g, '=');
const subjectOf = (part: string) => part.replace(/=/g, '.');

export const versionPrefix = (subject: string) => `v.${keyPart(subject)}.`;
export const versionKey = (subject: string, n: number) =>
  `${versionPrefix(subject)}${String(n).padStart(VERSION_DIGITS, '0')}`;
export const configKey = (subject: string) => `c.${keyPart(subject)}`;

/** The subject's settings as stored, or undefined when none were ever set. */
export async function readConfig(bucket: SchemaBucket, subject: string): Promise<StoredConfig | undefined> {
  const entry = await bucket.get(configKey(subject));
  return entry ? (JSON.parse(entry.value) as StoredConfig) : undefined;
}

/** Every subject in a listing of the bucket, except those `skip` names. */
export function storedSubjects(
  entries: MetadataEntry[],
  skip: (subject: string) => boolean,
): Map<string, StoredSubject> {
  const subjects = new Map<string, StoredSubject>();
  const of = (subject: string) => {
    let s = subjects.get(subject);
    if (!s) subjects.set(subject, (s = { versions: [] }));
    return s;
  };
  for (const e of entries) {
    const [kind, part, n] = e.key.split('.');
    const subject = subjectOf(part ?? '');
    if (skip(subject)) continue;
    try {
      if (kind === 'v' && n !== undefined) {
        const stored = JSON.parse(e.value) as StoredVersion;
        of(subject).versions.push({ n: Number(n), stored });
      } else if (kind === 'c') {
        const config = JSON.parse(e.value) as StoredConfig;
        of(subject).config = config;
      }
    } catch {
      // A value this code did not write: ignored rather than stopping every other subject's refresh.
    }
  }
  for (const s of subjects.values()) s.versions.sort((a, b) => a.n - b.n);
  return subjects;
}

/** Opens the bucket on first use; an open that failed is tried again on the next call. */
export class LazySchemaBucket {
  private bucket?: Promise<SchemaBucket>;

  constructor(private readonly open: (() => Promise<SchemaBucket>) | undefined) {}

  get(): Promise<SchemaBucket> {
    const open = this.open;
    if (!open) {
      return Promise.reject(
        new SchemaError('unavailable', 'this event store keeps no metadata: only declared schemas'),
      );
    }
    if (!this.bucket) {
      this.bucket = open();
      this.bucket.catch(() => (this.bucket = undefined)); // retried on the next call
    }
    return this.bucket;
  }
}
