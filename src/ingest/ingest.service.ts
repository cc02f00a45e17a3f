/**
 * The ingest path: verified bytes → CloudEvent envelope → durable append → answer. A 2xx is only ever
 * returned after the store confirmed the event durable. Refusals are IngestErrors (and SchemaViolationErrors from
 * schema enforcement); the HTTP edge (ingest-refusal.ts) turns them into statuses.
 */
import { randomUUID } from 'node:crypto';
import type { AppConfig, SourceConfig } from '../config/app-config.js';
import { allowedBy } from '../events/pattern.js';
import { encodeCursor } from '../events/cursor.js';
import { buildEnvelope, isJsonContentType, maxStoredEventBytes, parseJsonBody } from '../events/envelope.js';
import { eventSubject, validatePublishSubject } from '../events/subject.js';
import type { Principal } from '../auth/auth.service.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import { type AppendResult, type EventStore, StoreUnavailableError } from '../store/event-store.port.js';
import type { SchemaEnforcer } from '../schemas/schema-enforcer.js';
import { bodyHash, MAX_SIGNATURES } from './verifiers/scheme-helpers.js';
import { schemeFor } from './verifiers/verifier.js';
import { IngestError } from './ingest.errors.js';
import type { VerifyErrorCode } from '../protocol/errors.js';
import type { PublishResult, SlackChallenge, WebhookAccepted, WebhookDuplicate } from '../protocol/ingest-answers.js';

export interface WebhookRequest {
  source: string;
  headers: Record<string, string[] | undefined>;
  body: Buffer;
  contentType: string | undefined;
}

export type WebhookAnswer =
  | { status: 202; body: WebhookAccepted }
  | { status: 200; body: WebhookDuplicate }
  | { status: 200; body: SlackChallenge };

export interface PublishItem {
  subject: string;
  id?: string;
  type?: string;
  data: unknown;
}

export type { PublishResult };

const MAX_BATCH = 1000;
const EPOCH_TTL_MS = 5_000;

export class IngestService {
  private inFlight = 0;
  private accepting = true;
  private idleWaiters: (() => void)[] = [];
  private epoch?: { value: string; at: number };
  private readonly maxEventBytes: number;

  constructor(
    private readonly config: AppConfig,
    private readonly store: EventStore,
    private readonly metrics: MetricsService,
    private readonly clock: () => number = Date.now,
    private readonly schemas?: Pick<SchemaEnforcer, 'batch' | 'checkWebhook'>,
  ) {
    this.maxEventBytes = maxStoredEventBytes(config.ingest.maxBodyBytes);
  }

  source(name: string): SourceConfig {
    const source = this.config.sources.get(name);
    if (!source) throw new IngestError('unknown_source', `no source named "${name}" is configured`);
    return source;
  }

  async ingestWebhook(req: WebhookRequest): Promise<WebhookAnswer> {
    const source = this.source(req.source);
    const outcome = (o: string) => this.metrics.ingest.inc({ source: source.name, outcome: o });
    const scheme = schemeFor(source.verifier);
    const nowMs = this.clock();
    const refused = scheme.verify({ headers: req.headers, body: req.body, nowMs }, source);
    if (refused) {
      outcome(refused);
      throw new IngestError(refused, VERIFY_MESSAGES[refused]);
    }

    let json: unknown;
    if (isJsonContentType(req.contentType)) {
      const parsed = parseJsonBody(req.body, this.config.ingest.maxJsonDepth);
      if (!parsed.ok) {
        outcome('invalid_payload');
        throw new IngestError('invalid_payload', `the body is not valid JSON: ${parsed.reason}`);
      }
      json = parsed.value;
    }

    if (source.verifier === 'slack' && isObject(json) && json.type === 'url_verification') {
      outcome('challenge');
      return { status: 200, body: { challenge: json.challenge } };
    }

    const { deliveryId, eventType } = scheme.identify({ headers: req.headers, body: req.body, nowMs }, json, source);
    const type = eventType ?? source.defaultType;
    const subject = eventSubject(this.config.stream.subjectPrefix, source.name, type);
    const envelope = buildEnvelope({
      id: deliveryId,
      source: `/webhooks/${source.name}`,
      sourceName: source.name,
      type,
      timeMs: nowMs,
      contentType: req.contentType,
      json,
      body: req.body,
    });
    const verdict = this.schemas?.checkWebhook(source.name, subject, json);
    if (verdict?.refused) {
      outcome('schema_violation');
      throw verdict.refused; // not recorded for idempotency: the provider's retry is judged afresh
    }
    if (verdict?.dataschema) envelope.dataschema = verdict.dataschema;
    // Where the delivery id is not signed (GitHub, Shopify, generic hmac), the idempotency key is the signed body:
    // a captured body replayed under a new id or type is a duplicate, and an id claimed in advance with another
    // body cannot make a real delivery answer `duplicate`. The answer's `id` stays the delivery id as sent.
    const msgId = `${source.name}:${scheme.signsDeliveryId ? deliveryId : bodyHash(req.body)}`;
    const result = await this.append(subject, msgId, this.encode(envelope, msgId), () => outcome('unavailable'));
    if (result.duplicate) {
      outcome('duplicate');
      return {
        status: 200,
        body: { status: 'duplicate', id: deliveryId, ...(result.seq > 0 ? { seq: result.seq } : {}) },
      };
    }
    outcome('accepted');
    const cursor = encodeCursor({ epoch: await this.currentEpoch(), seq: result.seq });
    return { status: 202, body: { status: 'accepted', id: deliveryId, subject, seq: result.seq, cursor } };
  }

  /** POST /v1/events: validates the whole batch first; stores nothing unless every item is acceptable. */
  async publish(principal: Principal, payload: unknown): Promise<PublishResult[]> {
    const items = Array.isArray(payload) ? payload : [payload];
    if (items.length === 0 || items.length > MAX_BATCH) {
      throw new IngestError('invalid_payload', `send one event or an array of 1 to ${MAX_BATCH} events`);
    }
    const prefix = this.config.stream.subjectPrefix;
    const now = this.clock();
    // Each key publishes as its own CloudEvents source: (source, id) stays unique across keys, as the spec asks.
    const source = `/v1/events/${encodeURIComponent(principal.id)}`;
    const schemaCheck = this.schemas?.batch();
    const checked = items.map((item, i) => {
      const where = Array.isArray(payload) ? `item ${i}: ` : '';
      if (!isObject(item)) throw new IngestError('invalid_payload', `${where}an event must be a JSON object`);
      const { subject, id, type } = item;
      if (typeof subject !== 'string' || !validatePublishSubject(subject, prefix)) {
        throw new IngestError(
          'invalid_subject',
          `${where}"subject" must be a subject under "${prefix}." made of [A-Za-z0-9_-] tokens, without wildcards`,
        );
      }
      if (!allowedBy(principal.publish, subject)) {
        throw new IngestError('forbidden', `${where}the API key "${principal.id}" may not publish to ${subject}`);
      }
      if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 256)) {
        throw new IngestError('invalid_payload', `${where}"id" must be a string of 1 to 256 characters`);
      }
      if (type !== undefined && (typeof type !== 'string' || type.length === 0 || type.length > 256)) {
        throw new IngestError('invalid_payload', `${where}"type" must be a string of 1 to 256 characters`);
      }
      if (!('data' in item)) throw new IngestError('invalid_payload', `${where}"data" is required`);
      const eventId = (id as string | undefined) ?? randomUUID();
      const msgId = `v1:${principal.id}:${eventId}`;
      const dataschema = schemaCheck?.item(i, subject, item.data, item.schemaVersion, where);
      const envelope = {
        specversion: '1.0',
        id: eventId,
        source,
        type: (type as string | undefined) ?? subject.slice(prefix.length + 1),
        time: new Date(now).toISOString(),
        datacontenttype: 'application/json',
        ...(dataschema ? { dataschema } : {}),
        data: item.data,
        hookstreamsource: principal.id,
      };
      // Encoded while validating: an item too large to store refuses the batch before anything is stored.
      return { subject, id: eventId, msgId, data: this.encode(envelope, msgId, where) };
    });
    schemaCheck?.finish(); // 400 schema_violation listing every item's errors, before anything is stored

    const outcome = (o: string, n = 1) => this.metrics.ingest.inc({ source: 'v1', outcome: o }, n);
    // Appends are issued together: the store confirms them in issue order, so a batch keeps its order.
    const results = await Promise.all(
      checked.map((item) => this.append(item.subject, item.msgId, item.data, () => outcome('unavailable'))),
    );
    const epoch = await this.currentEpoch();
    return results.map((r, i) => {
      outcome(r.duplicate ? 'duplicate' : 'accepted');
      return { id: checked[i].id, seq: r.seq, cursor: encodeCursor({ epoch, seq: r.seq }), duplicate: r.duplicate };
    });
  }

  /** Shutdown: new ingests are refused `unavailable` (the provider retries against another replica). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves when no append is in flight, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * The envelope's bytes, or `payload_too_large` when the event would exceed the bound the store is sized to (see
   * maxStoredEventBytes): only JSON that grows when re-encoded, or huge headers, get there.
   */
  private encode(envelope: object, msgId: string, where = ''): Buffer {
    const data = Buffer.from(JSON.stringify(envelope));
    const size = data.length + Buffer.byteLength(msgId);
    if (size > this.maxEventBytes) {
      throw new IngestError(
        'payload_too_large',
        `${where}the stored event would be ${size} bytes, over the ${this.maxEventBytes} that ingest.maxBodyBytes allows`,
      );
    }
    return data;
  }

  private async append(subject: string, msgId: string, data: Buffer, onUnavailable: () => void): Promise<AppendResult> {
    if (!this.accepting) {
      onUnavailable();
      throw unavailable('this gateway is shutting down; retry');
    }
    if (this.inFlight >= this.config.ingest.maxInFlight) {
      onUnavailable();
      throw unavailable('too many events are waiting for the store; retry shortly');
    }
    this.inFlight++;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      // The adapter bounds its own wait; this guard makes sure no request ever hangs on a store bug.
      const guard = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new StoreUnavailableError('the store did not answer in time')),
          this.config.ingest.publishTimeoutMs + 2_000,
        );
      });
      const result = await Promise.race([this.store.append({ subject, msgId, data }), guard]);
      this.metrics.publishLatency.observe((performance.now() - started) / 1000);
      return result;
    } catch (err) {
      onUnavailable();
      if (err instanceof StoreUnavailableError) throw unavailable('the event could not be stored; retry later');
      throw err;
    } finally {
      clearTimeout(timer);
      if (--this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private async currentEpoch(): Promise<string> {
    const cached = this.epoch;
    if (cached && this.clock() - cached.at < EPOCH_TTL_MS) return cached.value;
    try {
      const { epoch } = await this.store.state();
      this.epoch = { value: epoch, at: this.clock() };
      return epoch;
    } catch {
      // The event is stored; a slightly old epoch only costs a resuming client a gap notice. With none known
      // yet, `unavailable`: the provider's retry is answered as a duplicate once the store answers again.
      if (cached) return cached.value;
      throw unavailable('the event is stored, but the stream cannot be read to name its cursor; retry');
    }
  }
}

const VERIFY_MESSAGES = {
  missing_signature: 'the request carries no signature, or lacks a header the scheme needs',
  invalid_signature: `no configured secret produces this signature, or there are over ${MAX_SIGNATURES} signatures`,
  timestamp_out_of_tolerance: 'the signed timestamp is too far from the current time',
} as const satisfies Record<VerifyErrorCode, string>;

function unavailable(message: string): IngestError {
  return new IngestError('unavailable', message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
