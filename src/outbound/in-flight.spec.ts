/**
 * The hand-outs one process holds: a second hand-out of an event joins the first, an echo of a fresh ack is
 * ignored, and the hand-out that follows a retry is a new attempt of its own.
 */
import { describe, expect, it } from '@jest/globals';
import type { DeliveryItem } from '../store/delivery-queue.port.js';
import { InFlightDeliveries } from './in-flight.js';

function handOut(attempt: number, log: string[]): DeliveryItem {
  return {
    seq: 7,
    subject: 'events.x',
    data: new Uint8Array(),
    time: 0,
    attempt,
    ack: async () => void log.push(`ack ${attempt}`),
    retry: async (ms: number) => void log.push(`retry ${attempt} ${ms}`),
    drop: async () => void log.push(`drop ${attempt}`),
  };
}

describe('InFlightDeliveries', () => {
  it('joins a second hand-out to the one held and settles through the newest', async () => {
    const log: string[] = [];
    const held = new InFlightDeliveries(() => 0, 2_000);
    const h = held.claim('q', handOut(1, log), 0)!;
    expect(held.claim('q', handOut(2, log), 0)).toBeNull();
    const item = held.current(h);
    expect(item.attempt).toBe(2);
    await item.ack();
    held.release(h);
    expect(log).toEqual(['ack 2']);
    // The echo of that ack, within half an ack wait: ignored.
    expect(held.claim('q', handOut(3, log), 0)).toBeNull();
  });

  it('treats the hand-out after a retry as the next attempt, even before the holder lets go', async () => {
    const log: string[] = [];
    const held = new InFlightDeliveries(() => 0, 2_000);
    const h = held.claim('q', handOut(3, log), 0)!;
    await held.current(h).retry(400);
    // The queue hands it out again after the delay while the holder still records the failed attempt.
    const next = held.claim('q', handOut(4, log), 0);
    expect(next).not.toBeNull();
    expect(held.current(next!).attempt).toBe(4);
    held.release(h);
    expect(held.size).toBe(1);
    expect(log).toEqual(['retry 3 400']);
  });

  it('leaves a retry to the queue when the hand-out was held past the ack wait (handed out again meanwhile)', async () => {
    const log: string[] = [];
    let now = 0;
    const held = new InFlightDeliveries(() => now, 1_000);
    const fresh = held.claim('q', handOut(1, log), 0)!;
    now = 999;
    await held.current(fresh).retry(400);
    expect(log).toEqual(['retry 1 400']);
    const stale = held.claim('q', handOut(2, log), 1_000)!;
    // The process was stopped past the ack wait during this attempt: no retry goes to the queue, the holding is gone.
    now = 2_000;
    await held.current(stale).retry(400);
    expect(log).toEqual(['retry 1 400']);
    expect(held.size).toBe(0);
  });
});
