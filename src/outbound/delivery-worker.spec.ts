/**
 * The delivery worker with a fake queue and clock: a hand-out that the process held past what its ack wait leaves
 * for a request (it was frozen — SIGSTOP, a long pause — between the pull and the send) is not sent, because the
 * queue has handed it, or is about to hand it, to another replica. Sending it anyway attempted one event from two
 * gateways at once, an older attempt number after a newer one (found by the chaos run's outbound receivers). And an
 * event handed out again to the process still holding it is not sent a second time alongside the first.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { DeliveryConfig } from '../config/app-config.js';
import type { DeliveryItem, DeliveryQueue, DeliveryQueues } from '../store/delivery-queue.port.js';
import { ackWaitFor, DeliveryWorker } from './delivery-worker.js';
import type { EndpointRecord } from './endpoint.js';
import type { EndpointStore } from './endpoint-store.js';

const config: DeliveryConfig = {
  timeoutMs: 2_000,
  retryScheduleMs: [1_000],
  jitter: 0,
  disableAfterMs: 86_400_000,
  secretGraceMs: 0,
  attemptRetentionMs: 60_000,
  allowPrivateNetworks: true,
};

const endpoint: EndpointRecord = {
  id: 'ep_test',
  url: 'http://127.0.0.1:9/hook',
  patterns: ['events.x'],
  description: '',
  status: 'active',
  disabledReason: null,
  ordering: 'fifo',
  maxInFlight: 1,
  rateLimit: null,
  headers: {},
  owner: null,
  managed: 'api',
  createdAt: new Date(0).toISOString(),
  secret: `whsec_${Buffer.alloc(24, 7).toString('base64')}`,
  previousSecret: null,
  startSeq: 1,
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Send = ConstructorParameters<typeof DeliveryWorker>[0]['sender']['send'];

/** A worker over one fake queue, a fake endpoint store (healthy, writes accepted) and a quiet logger. */
function startWorker(queue: DeliveryQueue, send: Send, now?: () => number): DeliveryWorker {
  const queues: DeliveryQueues = { open: async () => queue, delete: async () => undefined, list: async () => [] };
  const endpoints = {
    health: async () => ({ lastSuccessAt: null, lastFailureAt: null, failingSince: null }),
    putHealth: async () => undefined,
    putAttempt: async () => undefined,
    putDead: async () => undefined,
    removeJob: async () => undefined,
  } as unknown as EndpointStore;
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  return new DeliveryWorker({
    queues,
    endpoints,
    sender: { send },
    config,
    epoch: () => 'e1',
    disable: async () => undefined,
    logger: quiet,
    userAgent: 'Hookstream/test',
    ...(now ? { now } : {}),
  });
}

/** A worker whose queue hands out one event, the clock moving `heldMs` during that fetch; what it then did. */
async function handOutOnce(heldMs: number) {
  let clock = 1_000_000;
  const settled: string[] = [];
  const sent: number[] = [];
  let fetches = 0;
  const item: DeliveryItem = {
    seq: 1,
    subject: 'events.x',
    data: new TextEncoder().encode(JSON.stringify({ id: 'evt_1' })),
    time: clock,
    attempt: 1,
    ack: async () => void settled.push('ack'),
    retry: async () => void settled.push('retry'),
    drop: async () => void settled.push('drop'),
  };
  const queue: DeliveryQueue = {
    fetch: async () => {
      fetches++;
      if (fetches === 1) {
        clock += heldMs;
        return [item];
      }
      await sleep(5);
      return [];
    },
    state: async () => ({ backlog: 0, inFlight: 0, lastHandedOut: 1 }),
  };
  worker = startWorker(
    queue,
    async () => {
      sent.push(clock);
      return { status: 200, error: null, response: 'ok', retryAfterMs: null, durationMs: 1 };
    },
    () => clock,
  );
  worker.sync([endpoint], []);
  // The loop has come back for more after handling the hand-out.
  for (let i = 0; i < 400 && fetches < 3; i++) await sleep(5);
  await worker.stop();
  return { sent, settled, fetches };
}

let worker: DeliveryWorker | undefined;
afterEach(async () => {
  await worker?.stop();
  worker = undefined;
});

describe('DeliveryWorker: a hand-out held too long', () => {
  it('sends and acks a hand-out handled at once', async () => {
    const { sent, settled, fetches } = await handOutOnce(50);
    expect(fetches).toBeGreaterThanOrEqual(3);
    expect(sent).toHaveLength(1);
    expect(settled).toEqual(['ack']);
  });

  it('leaves a hand-out the process held past its ack wait minus the request timeout: not sent, not settled', async () => {
    const held = ackWaitFor(config) - config.timeoutMs + 1;
    const { sent, settled, fetches } = await handOutOnce(held);
    expect(fetches).toBeGreaterThanOrEqual(3);
    expect(sent).toEqual([]);
    expect(settled).toEqual([]);
  });
});

describe('DeliveryWorker: an event handed out again to the process holding it', () => {
  it('sends it once, settles through the newest hand-out, and ignores an echo of the ack', async () => {
    const settled: string[] = [];
    const sent: string[] = [];
    const handOut = (attempt: number): DeliveryItem => ({
      seq: 1,
      subject: 'events.x',
      data: new TextEncoder().encode(JSON.stringify({ id: 'evt_1' })),
      time: 0,
      attempt,
      ack: async () => void settled.push(`ack ${attempt}`),
      retry: async () => void settled.push(`retry ${attempt}`),
      drop: async () => void settled.push(`drop ${attempt}`),
    });
    // Attempt 1 while the request is open; 2 (its ack wait ran out) before it is answered; 3 after the ack (the
    // queue's hand-out crossed the ack); then nothing.
    const script: DeliveryItem[][] = [[handOut(1)], [handOut(2)], [], [handOut(3)]];
    let answer!: () => void;
    const answered = new Promise<void>((r) => (answer = r));
    let fetches = 0;
    let returned = 0;
    const queue: DeliveryQueue = {
      fetch: async () => {
        const step = fetches++;
        if (step === 2) await answered.then(() => sleep(20));
        else await sleep(5);
        returned++;
        return script[step] ?? [];
      },
      state: async () => ({ backlog: 0, inFlight: 0, lastHandedOut: 1 }),
    };
    worker = startWorker(queue, async (_url, headers) => {
      sent.push(headers['hookstream-attempt']);
      // Answered only once the second hand-out has come.
      for (let i = 0; i < 400 && returned < 2; i++) await sleep(5);
      answer();
      return { status: 200, error: null, response: 'ok', retryAfterMs: null, durationMs: 1 };
    });
    // Several in flight allowed: the loop keeps pulling while the first request is open.
    worker.sync([{ ...endpoint, ordering: 'unordered', maxInFlight: 4 }], []);
    for (let i = 0; i < 400 && fetches < 6; i++) await sleep(5);
    await worker.stop();
    expect(fetches).toBeGreaterThanOrEqual(6);
    expect(sent).toEqual(['1']);
    expect(settled).toEqual(['ack 2']);
  });
});
