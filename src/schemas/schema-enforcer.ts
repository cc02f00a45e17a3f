/**
 * Enforcement at ingest: the events of a subject that has a schema are validated against its latest version (or
 * the version a /v1/events item pins with `schemaVersion`). Passing events get their CloudEvents `dataschema`;
 * failing ones are refused (`enforce`) or stored without it and counted (`warn`). The default mode is `enforce`
 * on /v1/events (the producer is ours to fix) and `warn` on webhooks (a provider cannot change its payloads).
 * Refusals are ingest refusals (IngestError, SchemaViolationError): the ingest edge gives them their statuses.
 */
import { Counter, type Registry } from 'prom-client';
import { IngestError, SchemaViolationError } from '../ingest/ingest.errors.js';
import type { SchemaRegistry, SchemaVersion, SubjectSchemas } from './schema-registry.js';
import { type SchemaViolation, violationsOf } from './schema-validator.js';

export interface BatchCheck {
  /**
   * `schemaVersion`: the producer's pin, a version number or "latest" (undefined: the latest); `where` prefixes
   * refusal messages ("item 3: ").
   */
  item(index: number, subject: string, data: unknown, schemaVersion: unknown, where: string): string | undefined;
  finish(): void;
}

/** A webhook's verdict: the `dataschema` to stamp, or the refusal to answer. */
export type WebhookVerdict = { dataschema?: string; refused?: undefined } | { refused: SchemaViolationError };

interface Logger {
  warn(obj: object, msg: string): void;
}

const MAX_LOGGED_ERRORS = 5;

export class SchemaEnforcer {
  private readonly violations: Counter<'subject' | 'mode'>;

  constructor(
    private readonly registry: SchemaRegistry,
    metricsRegistry: Registry,
    private readonly logger?: Logger,
  ) {
    this.violations = new Counter({
      name: 'hookstream_schema_violations_total',
      help: 'Events that did not match their subject schema, by subject and mode (enforce: refused; warn: stored without dataschema)',
      labelNames: ['subject', 'mode'] as const,
      registers: [metricsRegistry],
    });
  }

  /**
   * POST /v1/events: one check per batch. `item()` answers the item's `dataschema` (undefined: no schema, or it
   * failed in warn mode) and collects its errors in enforce mode; `finish()` then refuses the whole batch with a
   * SchemaViolationError listing every error of every refused item (answered 400 `schema_violation`).
   */
  batch(): BatchCheck {
    this.ensureLoaded();
    const errors: SchemaViolation[] = [];
    return {
      item: (index, subjectName, data, schemaVersion, where) => {
        if (schemaVersion === undefined && this.registry.isEmpty()) return undefined;
        const subject = this.registry.lookup(subjectName);
        const version = pinned(subject, subjectName, schemaVersion, where);
        if (!subject || !version) return undefined;
        if (version.validate(data)) return version.dataschema;
        const found = violationsOf(version.validate.errors, index);
        const mode = subject.mode ?? 'enforce';
        this.violations.inc({ subject: subject.subject, mode });
        if (mode === 'enforce') errors.push(...found);
        else this.warn(subject, version, found, { publisher: 'v1' });
        return undefined;
      },
      finish: () => {
        if (!errors.length) return;
        throw new SchemaViolationError('batch', 'events do not match their subject schema; nothing was stored', errors);
      },
    };
  }

  /** A verified webhook's data (undefined when the body is not JSON) against its subject's latest schema. */
  checkWebhook(source: string, subjectName: string, json: unknown): WebhookVerdict | undefined {
    this.ensureLoaded();
    const subject = this.registry.lookup(subjectName);
    const version = subject?.versions[subject.versions.length - 1];
    if (!subject || !version) return undefined;
    if (json !== undefined && version.validate(json)) return { dataschema: version.dataschema };
    const found =
      json === undefined
        ? [{ index: 0, path: '', message: 'the body is not JSON, so it cannot match a JSON Schema' }]
        : violationsOf(version.validate.errors, 0);
    const mode = subject.mode ?? 'warn';
    this.violations.inc({ subject: subject.subject, mode });
    if (mode === 'warn') {
      this.warn(subject, version, found, { source });
      return {};
    }
    return {
      refused: new SchemaViolationError(
        'event',
        `the event does not match version ${version.version} of the schema of ${subject.subject}; it was not stored`,
        found,
      ),
    };
  }

  /** Until the registry has loaded once, nothing can be judged: `unavailable` (the store is most likely down too). */
  private ensureLoaded(): void {
    if (!this.registry.isLoaded()) throw new IngestError('unavailable', 'the schema registry is not loaded yet; retry');
  }

  private warn(subject: SubjectSchemas, version: SchemaVersion, errors: SchemaViolation[], from: object): void {
    this.logger?.warn(
      { ...from, subject: subject.subject, version: version.version, errors: errors.slice(0, MAX_LOGGED_ERRORS) },
      'event does not match its subject schema (mode warn): stored without dataschema',
    );
  }
}

/** The version an item is checked against: its pin, else the latest. A pin that names nothing is `invalid_payload`. */
function pinned(
  subject: SubjectSchemas | undefined,
  subjectName: string,
  pin: unknown,
  where: string,
): SchemaVersion | undefined {
  if (pin === undefined) return subject?.versions[subject.versions.length - 1];
  if (!subject || subject.versions.length === 0) {
    throw new IngestError('invalid_payload', `${where}"schemaVersion" is set, but ${subjectName} has no schema`);
  }
  const n = pin === 'latest' ? subject.versions.length : pin;
  const version = typeof n === 'number' && Number.isInteger(n) ? subject.versions[n - 1] : undefined;
  if (!version) {
    throw new IngestError(
      'invalid_payload',
      `${where}"schemaVersion" must be "latest" or one of the versions of ${subjectName} (1 to ${subject.versions.length})`,
    );
  }
  return version;
}
