/**
 * Where outbound state lives in the event store's metadata: endpoint records, delivery health, dead letters, the
 * attempt log and redelivery jobs. Keys are `<kind>.<endpoint id>[.<seq>…]`; sequences are zero-padded so key order
 * is stream order.
 */
import type { AttemptRecord, DeadLetter, EndpointHealth, EndpointRecord, RedeliveryJob } from './endpoint.js';
import type { MetadataBucket, MetadataStore } from '../store/metadata.port.js';

const pad = (n: number, width: number) => String(n).padStart(width, '0');
const seqKey = (seq: number) => pad(seq, 16);

export interface Versioned<T> {
  value: T;
  revision: number;
}

function parse<T>(value: string): T {
  return JSON.parse(value) as T;
}

export class EndpointStore {
  private constructor(
    private readonly meta: MetadataBucket,
    private readonly log: MetadataBucket,
  ) {}

  static async open(metadata: MetadataStore): Promise<EndpointStore> {
    return new EndpointStore(await metadata.bucket('outbound'), await metadata.bucket('outbound_log'));
  }

  // ---- endpoints ----

  async get(id: string): Promise<Versioned<EndpointRecord> | null> {
    const e = await this.meta.get(`ep.${id}`);
    return e ? { value: parse<EndpointRecord>(e.value), revision: e.revision } : null;
  }

  async list(): Promise<Versioned<EndpointRecord>[]> {
    return (await this.meta.list('ep.')).map((e) => ({ value: parse<EndpointRecord>(e.value), revision: e.revision }));
  }

  /** Throws the store's conflict error when the id exists. */
  create(e: EndpointRecord): Promise<number> {
    return this.meta.create(`ep.${e.id}`, JSON.stringify(e));
  }

  /** Throws the store's conflict error when the record changed since `revision`. */
  update(e: EndpointRecord, revision: number): Promise<number> {
    return this.meta.update(`ep.${e.id}`, JSON.stringify(e), revision);
  }

  /** Removes the endpoint and everything kept about it. */
  async remove(id: string): Promise<void> {
    await this.meta.delete(`ep.${id}`);
    await this.forget(id);
  }

  /** Removes what is kept about an endpoint besides its record (also used for declared endpoints). */
  async forget(id: string): Promise<void> {
    await this.meta.delete(`health.${id}`);
    for (const e of await this.meta.list(`job.${id}.`)) await this.meta.delete(e.key);
    for (const e of await this.log.list(`dead.${id}.`)) await this.log.delete(e.key);
    for (const e of await this.log.list(`att.${id}.`)) await this.log.delete(e.key);
  }

  // ---- health ----

  async health(id: string): Promise<EndpointHealth> {
    const e = await this.meta.get(`health.${id}`);
    return e ? parse<EndpointHealth>(e.value) : { lastSuccessAt: null, lastFailureAt: null, failingSince: null };
  }

  async putHealth(id: string, h: EndpointHealth): Promise<void> {
    await this.meta.put(`health.${id}`, JSON.stringify(h));
  }

  // ---- dead letters ----

  async putDead(id: string, d: DeadLetter): Promise<void> {
    await this.log.put(`dead.${id}.${seqKey(d.seq)}`, JSON.stringify(d));
  }

  async dead(id: string): Promise<DeadLetter[]> {
    return (await this.log.list(`dead.${id}.`)).map((e) => parse<DeadLetter>(e.value));
  }

  /** Dead letters per endpoint id, in one listing (metrics read every endpoint's count at once). */
  async deadCounts(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const e of await this.log.list('dead.')) {
      const id = e.key.split('.')[1];
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  }

  async removeDead(id: string, seq: number): Promise<void> {
    await this.log.delete(`dead.${id}.${seqKey(seq)}`);
  }

  // ---- attempt log ----

  async putAttempt(id: string, a: AttemptRecord): Promise<void> {
    // The time in the key keeps redeliveries (attempt numbers start again) apart from the first round.
    await this.log.put(
      `att.${id}.${seqKey(a.seq)}.${pad(Date.parse(a.at), 15)}.${pad(a.attempt, 4)}`,
      JSON.stringify(a),
    );
  }

  async attempts(id: string): Promise<AttemptRecord[]> {
    return (await this.log.list(`att.${id}.`)).map((e) => parse<AttemptRecord>(e.value));
  }

  /** Deletes attempt entries older than `beforeMs`; returns how many. */
  async pruneAttempts(beforeMs: number): Promise<number> {
    let n = 0;
    for (const e of await this.log.list('att.')) {
      const at = Number(e.key.split('.')[3]);
      if (Number.isFinite(at) && at < beforeMs) {
        await this.log.delete(e.key);
        n++;
      }
    }
    return n;
  }

  // ---- redelivery jobs ----

  async putJob(id: string, job: RedeliveryJob): Promise<void> {
    await this.meta.put(`job.${id}.${job.id}`, JSON.stringify(job));
  }

  async jobs(id: string): Promise<RedeliveryJob[]> {
    return (await this.meta.list(`job.${id}.`)).map((e) => parse<RedeliveryJob>(e.value));
  }

  async allJobs(): Promise<{ endpointId: string; job: RedeliveryJob }[]> {
    return (await this.meta.list('job.')).map((e) => ({
      endpointId: e.key.split('.')[1],
      job: parse<RedeliveryJob>(e.value),
    }));
  }

  async removeJob(id: string, jobId: string): Promise<void> {
    await this.meta.delete(`job.${id}.${jobId}`);
  }
}
