/**
 * Redelivery: `POST /v1/endpoints/:id/redeliver` with dead event ids or a `[from, until]` range becomes a job, with
 * a delivery queue of its own that the worker drains beside the endpoint's main queue (same `webhook-id`s, a fresh
 * schedule). Dead events sent again leave the dead list. Input is checked before anything is written; a job whose
 * record cannot be written leaves no queue behind.
 */
import { decodeCursor, parseStart } from '../events/cursor.js';
import { coveringPattern, matchesSubject } from '../events/pattern.js';
import type { DeliveryQueues } from '../store/delivery-queue.port.js';
import type { EventStore } from '../store/event-store.port.js';
import { jobQueueName } from './delivery-worker.js';
import type { DeliverySupervisor } from './delivery-supervisor.js';
import { OutboundError, type DeadLetter, type EndpointRecord, type RedeliveryJob } from './endpoint.js';
import { bad, checkFields, isObject, MAX_REDELIVER_IDS, newId } from './endpoint-input.js';

export class Redeliveries {
  constructor(
    private readonly store: EventStore,
    private readonly queues: DeliveryQueues,
    private readonly supervisor: DeliverySupervisor,
    private readonly now: () => number,
  ) {}

  async redeliver(record: EndpointRecord, body: unknown): Promise<{ queued: number }> {
    if (!isObject(body)) throw bad('the body must be a JSON object');
    checkFields(body, new Set(['eventIds', 'from', 'until']));
    const byIds = body.eventIds !== undefined;
    if (byIds && (body.from !== undefined || body.until !== undefined))
      throw bad('give eventIds or from/until, not both');
    const { job, dropDead } = byIds ? await this.byIds(record, body.eventIds) : await this.byRange(body);
    const queued = byIds ? dropDead.length : await this.countMatching(record, job.fromSeq, job.untilSeq);
    if (queued === 0) return { queued: 0 };
    const store = await this.supervisor.endpoints();
    const queueName = jobQueueName(record.id, job.id);
    await this.queues.open(queueName, this.supervisor.queueOptions(record, job.fromSeq));
    try {
      await store.putJob(record.id, job);
    } catch (err) {
      await this.queues.delete(queueName).catch(() => undefined);
      throw err;
    }
    // Sent again: no longer dead (if it fails again, it is recorded again).
    for (const d of dropDead) await store.removeDead(record.id, d.seq).catch(() => undefined);
    void this.supervisor.refresh();
    return { queued };
  }

  private async byIds(record: EndpointRecord, ids: unknown): Promise<{ job: RedeliveryJob; dropDead: DeadLetter[] }> {
    if (
      !Array.isArray(ids) ||
      ids.length === 0 ||
      ids.length > MAX_REDELIVER_IDS ||
      !ids.every((x) => typeof x === 'string')
    ) {
      throw bad(`eventIds must be an array of 1 to ${MAX_REDELIVER_IDS} strings`);
    }
    const dead = await (await this.supervisor.endpoints()).dead(record.id);
    // A dead event the stream no longer holds (expired by retention) cannot be sent again.
    const { firstSeq } = await this.store.state();
    const byId = new Map(dead.filter((d) => d.seq >= firstSeq).map((d) => [d.eventId, d]));
    const unique = [...new Set(ids as string[])];
    const missing = unique.filter((x) => !byId.has(x));
    if (missing.length) {
      throw new OutboundError(
        'not_found',
        `not dead for this endpoint, or no longer stored: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''}`,
      );
    }
    const dropDead = unique.map((x) => byId.get(x)!);
    const seqs = dropDead.map((d) => d.seq).sort((a, b) => a - b);
    const job = {
      id: newId('r'),
      fromSeq: seqs[0],
      untilSeq: seqs[seqs.length - 1],
      seqs,
      createdAt: new Date(this.now()).toISOString(),
    };
    return { job, dropDead };
  }

  private async byRange(body: Record<string, unknown>): Promise<{ job: RedeliveryJob; dropDead: DeadLetter[] }> {
    if (body.from === undefined && body.until === undefined) throw bad('give eventIds, or from and/or until');
    const state = await this.store.state();
    const fromSeq = body.from === undefined ? state.firstSeq : await this.boundSeq(body.from, 'from', state.epoch);
    const untilSeq = body.until === undefined ? state.lastSeq : await this.boundSeq(body.until, 'until', state.epoch);
    const job = {
      id: newId('r'),
      fromSeq: Math.max(fromSeq, state.firstSeq),
      untilSeq: Math.min(untilSeq, state.lastSeq),
      seqs: null,
      createdAt: new Date(this.now()).toISOString(),
    };
    return { job, dropDead: [] };
  }

  /** `[from, until]` bound of a redelivery: a cursor (that event) or an RFC 3339 time. */
  private async boundSeq(value: unknown, which: 'from' | 'until', epoch: string): Promise<number> {
    if (typeof value !== 'string')
      throw new OutboundError('invalid_cursor', `${which} must be a cursor or an RFC 3339 time`);
    const cursor = decodeCursor(value);
    if (cursor) {
      if (cursor.epoch !== epoch)
        throw new OutboundError('invalid_cursor', `${which}: the cursor belongs to another stream`);
      return cursor.seq;
    }
    const start = parseStart(value);
    if (!start || start.kind !== 'time')
      throw new OutboundError('invalid_cursor', `${which} must be a cursor or an RFC 3339 time`);
    return which === 'from' ? this.store.seqAtTime(start.ms) : (await this.store.seqAtTime(start.ms + 1)) - 1;
  }

  private async countMatching(e: EndpointRecord, fromSeq: number, untilSeq: number): Promise<number> {
    if (fromSeq > untilSeq) return 0;
    const reader = await this.store.openReader({ fromSeq, filter: coveringPattern(e.patterns), untilSeq });
    let n = 0;
    try {
      for (let page = await reader.next(500); page.length; page = await reader.next(500)) {
        for (const ev of page) if (ev.seq <= untilSeq && e.patterns.some((p) => matchesSubject(p, ev.subject))) n++;
      }
    } finally {
      await reader.close();
    }
    return n;
  }
}
