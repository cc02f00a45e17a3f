/**
 * The schema registry: subjects, their numbered versions, compatibility and enforcement mode.
 *
 * Declared subjects come from the config file and never change. Registered ones live in the event store's metadata,
 * shared by every replica (layout: schema-bucket.ts; how a version is accepted: schema-registration.ts). Each
 * replica keeps a snapshot in memory (one Map lookup on the ingest path) and reloads it every `refreshMs`, so a
 * version registered on one replica is enforced by all within about that time. Pure: no Nest, no NATS, no disk.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { DeclaredSchema, SchemaMode } from '../config/app-config.js';
import { validatePublishSubject } from '../events/subject.js';
import { type Compatibility, COMPATIBILITY_MODES } from './compatibility.js';
import { LazySchemaBucket, type SchemaBucket, storedSubjects } from './schema-bucket.js';
import { configureSubject, DEFAULT_COMPATIBILITY, type Registered, registerVersion } from './schema-registration.js';
import { SchemaError } from './schema.errors.js';
import { SchemaCompiler } from './schema-validator.js';

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

const START_WAIT_MS = 5_000;
const START_RETRY_MS = 100;
const REFRESH_TIMEOUT_MS = 5_000;
export class SchemaRegistry {
  private readonly compiler = new SchemaCompiler();
  private subjects = new Map<string, SubjectSchemas>();
  private readonly declared = new Map<string, SubjectSchemas>();
  private readonly bucket: LazySchemaBucket;
  private refreshing?: Promise<void>;
  private loadedOnce = false;
  private timer?: NodeJS.Timeout;
  private readonly clock: () => number;

  constructor(private readonly options: RegistryOptions) {
    this.clock = options.clock ?? Date.now;
    this.bucket = new LazySchemaBucket(options.openBucket);
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
  async register(subject: string, schema: unknown, compatibility?: Compatibility): Promise<Registered> {
    this.checkSubject(subject);
    const compiled = this.compiler.compile(schema);
    if (!compiled.ok) throw new SchemaError('invalid_schema', `the schema does not compile: ${compiled.message}`);
    const registered = await registerVersion(
      await this.bucket.get(),
      subject,
      schema as Record<string, unknown>,
      compatibility,
      { now: () => new Date(this.clock()).toISOString(), isConflict: this.options.isConflict },
    );
    await this.refreshAfterWrite();
    return registered;
  }

  /** PUT …/config: changes the subject's compatibility and/or mode (null: back to the defaults). */
  async configure(
    subject: string,
    change: { compatibility?: Compatibility; mode?: SchemaMode | null },
  ): Promise<{ compatibility: Compatibility; mode: SchemaMode | null }> {
    this.checkSubject(subject);
    const settings = await configureSubject(await this.bucket.get(), subject, change);
    await this.refreshAfterWrite();
    return settings;
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
    const bucket = await this.bucket.get();
    // The config file wins over anything stored for its subjects.
    const inStore = storedSubjects(await bucket.list(), (subject) => this.declared.has(subject));
    const next = new Map(this.declared);
    for (const [subject, { versions: list, config }] of inStore) {
      if (list.length === 0) continue; // settings alone, no version yet
      const previous = this.subjects.get(subject);
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
}

export function isCompatibility(v: unknown): v is Compatibility {
  return typeof v === 'string' && (COMPATIBILITY_MODES as readonly string[]).includes(v);
}

function notFound(message: string): SchemaError {
  return new SchemaError('not_found', message);
}
