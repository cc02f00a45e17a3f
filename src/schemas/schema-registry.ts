/**
 * The schema registry: subjects, their numbered versions, compatibility and enforcement mode.
 *
 * Declared subjects come from the config file and never change. Registered ones live in the event store's metadata
 * (bucket `schemas`), shared by every replica: version n of a subject is the key `v.<subject>.<n>` written with
 * create-if-absent, so concurrent registrations each take the next free number and versions have no gaps; a
 * subject's settings are the key `c.<subject>`. Each replica keeps a snapshot in memory (one Map lookup on the
 * ingest path) and reloads it every `refreshMs`, so a version registered on one replica is enforced by all within
 * about that time. Pure: no Nest, no NATS, no disk.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { DeclaredSchema, SchemaMode } from '../config/app-config.js';
import { validatePublishSubject } from '../events/subject.js';
import type { MetadataBucket } from '../store/metadata.port.js';
import { checkCompatibility, type Compatibility, COMPATIBILITY_MODES } from './compatibility.js';
import { SchemaError } from './schema.errors.js';
import { SchemaCompiler } from './schema-validator.js';

/** The part of the metadata port the registry uses. */
export type SchemaBucket = Pick<MetadataBucket, 'get' | 'create' | 'put' | 'list'>;

export interface SchemaVersion {
  version: number;
  schema: Record<string, unknown>;
  createdAt: string;
  validate: ValidateFunction;
  /** CloudEvents `dataschema` of events that passed this version. */
  dataschema: string;
}

export interface SubjectSchemas {
  subject: string;
  managed: 'config' | 'api';
  compatibility: Compatibility;
  /** null: the default of each ingest path (enforce on /v1/events, warn on webhooks). */
  mode: SchemaMode | null;
  /** Version n at index n - 1. */
  versions: SchemaVersion[];
}

export interface SubjectSummary {
  subject: string;
  latestVersion: number;
  compatibility: Compatibility;
  mode: SchemaMode | null;
  managed: 'config' | 'api';
}

export interface RegistryOptions {
  declared: DeclaredSchema[];
  subjectPrefix: string;
  publicUrl: string;
  /** Opens the shared bucket; absent when the store keeps no metadata (only declared schemas then). */
  openBucket?: () => Promise<SchemaBucket>;
  /** Whether an error from the bucket is a create that lost to an existing key. */
  isConflict: (err: unknown) => boolean;
  refreshMs?: number;
  clock?: () => number;
  onRefreshError?: (err: unknown) => void;
  onRefreshed?: () => void;
}

interface StoredVersion {
  schema: Record<string, unknown>;
  createdAt: string;
}

interface StoredConfig {
  compatibility?: Compatibility;
  mode?: SchemaMode | null;
}

const DEFAULT_COMPATIBILITY: Compatibility = 'backward';
const MAX_REGISTER_ATTEMPTS = 100;
const START_WAIT_MS = 5_000;
const START_RETRY_MS = 100;
const REFRESH_TIMEOUT_MS = 5_000;
const VERSION_DIGITS = 10;

/** Subjects use `.` between tokens, which the bucket uses between key parts: `=` stands for it in keys. */
const keyPart = (subject: string) => subject.replace(/\./g, '=');
const subjectOf = (part: string) => part.replace(/=/g, '.');
const versionKey = (subject: string, n: number) => `v.${keyPart(subject)}.${String(n).padStart(VERSION_DIGITS, '0')}`;
const configKey = (subject: string) => `c.${keyPart(subject)}`;

export class SchemaRegistry {
  private readonly compiler = new SchemaCompiler();
  private subjects = new Map<string, SubjectSchemas>();
  private readonly declared = new Map<string, SubjectSchemas>();
  private bucket?: Promise<SchemaBucket>;
  private refreshing?: Promise<void>;
  private loadedOnce = false;
  private timer?: NodeJS.Timeout;
  private readonly clock: () => number;

  constructor(private readonly options: RegistryOptions) {
    this.clock = options.clock ?? Date.now;
    const startedAt = new Date(this.clock()).toISOString();
    for (const d of options.declared) {
      const versions = d.versions.map((v, i) => this.version(d.subject, i + 1, v.schema, startedAt));
      this.declared.set(d.subject, {
        subject: d.subject,
        managed: 'config',
        compatibility: d.compatibility ?? DEFAULT_COMPATIBILITY,
        mode: d.mode ?? null,
        versions,
      });
    }
    this.subjects = new Map(this.declared);
  }

  /** Loads the registered schemas (a store that is not reachable yet is retried by the refresh loop). */
  async start(): Promise<void> {
    if (this.options.openBucket) {
      // The store may still be starting: retry briefly before serving, since until the registry is loaded the
      // ingest path answers 503 rather than let an event skip its schema.
      const giveUpAt = Date.now() + START_WAIT_MS;
      while (!this.loadedOnce) {
        try {
          await this.refresh();
        } catch (err) {
          if (Date.now() >= giveUpAt) {
            this.options.onRefreshError?.(err); // the loop below keeps trying
            break;
          }
          await new Promise((r) => setTimeout(r, START_RETRY_MS));
        }
      }
      this.timer = setInterval(() => {
        this.refresh().catch((err: unknown) => this.options.onRefreshError?.(err));
      }, this.options.refreshMs ?? 1_000);
      this.timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Called by the app at shutdown (a method name Nest looks for; no Nest import needed). */
  onApplicationShutdown(): void {
    this.stop();
  }

  /** The ingest path's lookup: the subject's schemas, or undefined when it has none. */
  lookup(subject: string): SubjectSchemas | undefined {
    return this.subjects.get(subject);
  }

  /** False until the registered schemas were read once (always true without a bucket). */
  isLoaded(): boolean {
    return this.loadedOnce || !this.options.openBucket;
  }

  /** True when no subject has a schema: the ingest path then skips even the lookup. */
  isEmpty(): boolean {
    return this.subjects.size === 0;
  }

  async list(): Promise<SubjectSummary[]> {
    await this.fresh();
    return [...this.subjects.values()]
      .filter((s) => s.versions.length > 0)
      .sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0))
      .map((s) => ({
        subject: s.subject,
        latestVersion: s.versions.length,
        compatibility: s.compatibility,
        mode: s.mode,
        managed: s.managed,
      }));
  }

  async get(subject: string): Promise<SubjectSchemas> {
    await this.fresh();
    const found = this.subjects.get(subject);
    if (!found || found.versions.length === 0) throw notFound(`no schema is registered for ${subject}`);
    return found;
  }

  async getVersion(subject: string, version: string): Promise<SchemaVersion> {
    const s = await this.get(subject);
    const n = version === 'latest' ? s.versions.length : /^[1-9][0-9]{0,9}$/.test(version) ? Number(version) : NaN;
    const found = s.versions[n - 1];
    if (!found) throw notFound(`${subject} has no version ${JSON.stringify(version)}`);
    return found;
  }

  /**
   * Registers the next version of `subject`: compiled, checked against the latest version under the subject's
   * compatibility (or `compatibility`, which then becomes the subject's), and stored under the next free number.
   */
  async register(
    subject: string,
    schema: unknown,
    compatibility?: Compatibility,
  ): Promise<{ subject: string; version: number; compatibility: Compatibility; createdAt: string }> {
    this.checkSubject(subject);
    const compiled = this.compiler.compile(schema);
    if (!compiled.ok) throw new SchemaError('invalid_schema', `the schema does not compile: ${compiled.message}`);
    const bucket = await this.openBucket();
    const next = schema as Record<string, unknown>;
    for (let attempt = 0; attempt < MAX_REGISTER_ATTEMPTS; attempt++) {
      const [stored, config] = await Promise.all([
        bucket.list(`v.${keyPart(subject)}.`),
        bucket.get(configKey(subject)).then((e) => (e ? (JSON.parse(e.value) as StoredConfig) : undefined)),
      ]);
      const mode = compatibility ?? config?.compatibility ?? DEFAULT_COMPATIBILITY;
      const latest = stored.length ? (JSON.parse(stored[stored.length - 1].value) as StoredVersion) : undefined;
      if (latest && !sameJson(latest.schema, next)) {
        const reasons = await checkCompatibility(mode, latest.schema, next);
        if (reasons.length) {
          throw new SchemaError(
            'incompatible_schema',
            `the schema breaks ${mode} compatibility with version ${stored.length} of ${subject}`,
            reasons,
          );
        }
      }
      const version = stored.length + 1;
      const createdAt = new Date(this.clock()).toISOString();
      try {
        await bucket.create(versionKey(subject, version), JSON.stringify({ schema: next, createdAt }));
      } catch (err) {
        if (this.options.isConflict(err)) continue; // another registration took this number: check again
        // The store refuses values over its size limit (JetStream: max_payload) as a caller error.
        if (err instanceof RangeError)
          throw new SchemaError('invalid_schema', `the schema cannot be stored: ${err.message}`);
        throw err;
      }
      if (compatibility !== undefined && compatibility !== config?.compatibility) {
        await bucket.put(configKey(subject), JSON.stringify({ ...config, compatibility }));
      }
      await this.refreshAfterWrite();
      return { subject, version, compatibility: mode, createdAt };
    }
    throw new SchemaError('unavailable', `too many concurrent registrations for ${subject}; retry`);
  }

  /** PUT …/config: changes the subject's compatibility and/or mode (null: back to the defaults). */
  async configure(
    subject: string,
    change: { compatibility?: Compatibility; mode?: SchemaMode | null },
  ): Promise<{ compatibility: Compatibility; mode: SchemaMode | null }> {
    this.checkSubject(subject);
    const bucket = await this.openBucket();
    const current = await bucket.get(configKey(subject));
    const config: StoredConfig = { ...(current ? (JSON.parse(current.value) as StoredConfig) : {}), ...change };
    await bucket.put(configKey(subject), JSON.stringify(config));
    await this.refreshAfterWrite();
    return { compatibility: config.compatibility ?? DEFAULT_COMPATIBILITY, mode: config.mode ?? null };
  }

  /** Reloads the registered subjects from the bucket; concurrent callers share one reload. */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      let timer: NodeJS.Timeout | undefined;
      // A store that never answers must not hold every later reload (and start-up) behind this one.
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new SchemaError('unavailable', 'the schema store did not answer in time')),
          REFRESH_TIMEOUT_MS,
        );
      });
      this.refreshing = Promise.race([this.reload(), deadline]).finally(() => {
        clearTimeout(timer);
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  /** A reload that lists the bucket after a write of ours: one already under way may have listed before it. */
  private async refreshAfterWrite(): Promise<void> {
    await this.refreshing?.catch(() => undefined);
    await this.refresh();
  }

  private async reload(): Promise<void> {
    const bucket = await this.openBucket();
    const entries = await bucket.list();
    const versions = new Map<string, { n: number; stored: StoredVersion }[]>();
    const configs = new Map<string, StoredConfig>();
    for (const e of entries) {
      const [kind, part, n] = e.key.split('.');
      const subject = subjectOf(part ?? '');
      if (this.declared.has(subject)) continue; // the config file wins over anything stored for its subjects
      try {
        if (kind === 'v' && n !== undefined) {
          const list = versions.get(subject) ?? [];
          list.push({ n: Number(n), stored: JSON.parse(e.value) as StoredVersion });
          versions.set(subject, list);
        } else if (kind === 'c') {
          configs.set(subject, JSON.parse(e.value) as StoredConfig);
        }
      } catch {
        // A value this code did not write: ignored rather than stopping every other subject's refresh.
      }
    }
    const next = new Map(this.declared);
    for (const [subject, list] of versions) {
      list.sort((a, b) => a.n - b.n);
      const previous = this.subjects.get(subject);
      const config = configs.get(subject);
      const compiled: SchemaVersion[] = [];
      for (const { n, stored } of list) {
        if (n !== compiled.length + 1) break; // never expose a gap; versions are written in order
        const known = previous?.versions[n - 1];
        if (known && known.createdAt === stored.createdAt) {
          compiled.push(known);
          continue;
        }
        try {
          compiled.push(this.version(subject, n, stored.schema, stored.createdAt));
        } catch (err) {
          this.options.onRefreshError?.(err);
          break;
        }
      }
      next.set(subject, {
        subject,
        managed: 'api',
        compatibility: config?.compatibility ?? DEFAULT_COMPATIBILITY,
        mode: config?.mode ?? null,
        versions: compiled,
      });
    }
    this.subjects = next;
    this.loadedOnce = true;
    this.options.onRefreshed?.();
  }

  /** Reads see the latest stored state; while the store is unreachable, the last loaded one. */
  private async fresh(): Promise<void> {
    if (!this.options.openBucket) return;
    try {
      await this.refresh();
    } catch (err) {
      if (!this.loadedOnce) throw err;
    }
  }

  private version(subject: string, n: number, schema: Record<string, unknown>, createdAt: string): SchemaVersion {
    const compiled = this.compiler.compile(schema);
    // Stored schemas compiled when registered; a failure here means the store holds something else.
    if (!compiled.ok) throw new Error(`${subject} version ${n} no longer compiles: ${compiled.message}`);
    return {
      version: n,
      schema,
      createdAt,
      validate: compiled.validate,
      dataschema: `${this.options.publicUrl}/v1/schemas/${subject}/versions/${n}`,
    };
  }

  private checkSubject(subject: string): void {
    if (!validatePublishSubject(subject, this.options.subjectPrefix)) {
      throw new SchemaError(
        'invalid_subject',
        `"${subject}" is not a subject under "${this.options.subjectPrefix}." made of [A-Za-z0-9_-] tokens without wildcards`,
      );
    }
    if (this.declared.has(subject)) {
      throw new SchemaError(
        'read_only',
        `${subject} is declared in the config file and cannot be changed through the API`,
      );
    }
  }

  private openBucket(): Promise<SchemaBucket> {
    const open = this.options.openBucket;
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

export function isCompatibility(v: unknown): v is Compatibility {
  return typeof v === 'string' && (COMPATIBILITY_MODES as readonly string[]).includes(v);
}

function notFound(message: string): SchemaError {
  return new SchemaError('not_found', message);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
