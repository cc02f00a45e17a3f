/**
 * A gateway whose event loop stops for longer than the delivery ack wait while it holds an event (a process starved
 * of CPU, a long GC pause): the queue hands the event out again, to this same process, while it still holds the
 * first hand-out. On both stores: the gateway sends each event one request at a time, with attempt
 * numbers that only grow, delivers every one and gets a single 2xx for each (the receiver verifies every request
 * with the official `standardwebhooks` library).
 *
 * The stop is a real one: `Atomics.wait` blocks the whole process (the gateway runs in this one) inside the worker's
 * first read of the endpoint's health, after the pull and before the request. A second case holds up only one store
 * call, the attempt log's write between the 2xx and the ack, while the process runs on and keeps pulling.
 */
import { afterEach, expect, it, jest } from '@jest/globals';
import { createStore } from '../src/bootstrap.js';
import { ackWaitFor } from '../src/outbound/delivery-deps.js';
import { createLogger } from '../src/logging/logger.js';
import type { EventStore } from '../src/store/event-store.port.js';
import type { MetadataBucket, MetadataStore } from '../src/store/metadata.port.js';
import { waitFor } from './lib/wait.mjs';
import { describeEachStore, type TestBackend } from './support/backends.js';
import { uniqueStreamName } from './support/config.js';
import type { RunningGateway } from './support/gateway.js';
import {
  api,
  createEndpoint,
  outboundFile,
  publish,
  Receiver,
  startOutboundGateway,
  SVC_KEY,
} from './support/outbound.js';

jest.setTimeout(90_000);

/** Blocks this process's thread for `ms`: no timer, no socket, no promise runs meanwhile. */
function freezeFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

type Op = 'get' | 'put';
/** `freeze`: the process stops (Atomics.wait); `stall`: only the call waits, everything else runs on. */
type How = 'freeze' | 'stall';

/**
 * `store` with one hold-up armed: the next metadata call `op` (in any bucket) on a key starting with `prefix` is
 * held up for `ms` first, as `how` says. Everything else goes to the store untouched.
 */
function withHoldUp(store: EventStore) {
  const armed: { op: Op | ''; prefix: string; ms: number; how: How } = { op: '', prefix: '', ms: 0, how: 'freeze' };
  const held: number[] = [];
  const holdUp = <T>(op: Op, key: string, call: () => Promise<T>): Promise<T> => {
    if (armed.op !== op || !key.startsWith(armed.prefix)) return call();
    armed.op = '';
    const t0 = Date.now();
    if (armed.how === 'freeze') {
      freezeFor(armed.ms);
      held.push(Date.now() - t0);
      return call();
    }
    return new Promise<void>((r) => setTimeout(r, armed.ms)).then(() => {
      held.push(Date.now() - t0);
      return call();
    });
  };
  const wrapBucket = (b: MetadataBucket): MetadataBucket =>
    new Proxy(b, {
      get(target, prop) {
        if (prop === 'get') return (k: string) => holdUp('get', k, () => target.get(k));
        if (prop === 'put') return (k: string, value: string) => holdUp('put', k, () => target.put(k, value));
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  const metadata = (): MetadataStore => {
    const real = store.metadata();
    return { bucket: async (name) => wrapBucket(await real.bucket(name)) };
  };
  const wrapped = new Proxy(store, {
    get(target, prop) {
      if (prop === 'metadata') return metadata;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    store: wrapped,
    arm: (op: Op, prefix: string, ms: number, how: How) => Object.assign(armed, { op, prefix, ms, how }),
    held,
  };
}

describeEachStore('outbound delivery with a frozen event loop', (backend) => {
  let gw: RunningGateway | undefined;
  let rx: Receiver | undefined;
  // One store per case: streams on one nats-server may not share the `events.>` subjects.
  let store: TestBackend | undefined;

  afterEach(async () => {
    await gw?.close();
    await rx?.close();
    await store?.teardown();
    gw = rx = store = undefined;
  });

  /** Creates an endpoint, arms the freeze at `op` on `prefix(endpoint id)`, publishes `events` events, then judges. */
  async function run(how: How, op: Op, prefix: (endpointId: string) => string, events: number) {
    store = backend.sibling();
    await store.setup();
    rx = await Receiver.start();
    const config = store.configFor(
      outboundFile(uniqueStreamName('OUTFREEZE'), { timeout: '1s', retrySchedule: ['300ms', '600ms'], jitter: 0.1 }),
    );
    const ackWaitMs = ackWaitFor(config.delivery);
    const holdUp = withHoldUp(createStore(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent')));
    gw = await startOutboundGateway(config, { store: holdUp.store });
    const subject = 'events.svc.freeze.x';
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject], maxInFlight: 16 });
    // Past the ack wait by a margin: by the time the call goes on, the queue has handed the event out again.
    holdUp.arm(op, prefix(ep.id), ackWaitMs + 1_000, how);
    const ids = Array.from({ length: events }, (_, i) => `freeze-${i}-${Date.now().toString(36)}`);
    await publish(gw.url, subject, ids);

    const seen = () =>
      JSON.stringify(ids.map((id) => rx!.received.filter((r) => r.id === id).map((r) => [r.attempt, r.status])));
    const delivered = (id: string) => rx!.received.some((r) => r.id === id && r.status === 200);
    await waitFor(() => ids.every(delivered), { timeoutMs: 45_000, message: 'every event delivered' }).catch(
      (err: Error) => {
        throw new Error(`${err.message}; seen ${seen()}`);
      },
    );
    // Nothing left to hand out: a second request, had there been one, has been made by now.
    await waitFor(
      async () => (await api(gw!.url, 'GET', `/v1/endpoints/${ep.id}`, SVC_KEY)).body.state?.pending === 0,
      {
        timeoutMs: 30_000,
        message: 'nothing pending',
      },
    );

    // The hold-up happened, where it was meant to, and outlasted the ack wait.
    expect(holdUp.held).toHaveLength(1);
    expect(holdUp.held[0]).toBeGreaterThan(ackWaitMs);
    expect(rx.received.every((r) => r.verified)).toBe(true);
    for (const id of ids) {
      const mine = rx.received.filter((r) => r.id === id);
      // One request at a time: none began before the previous one for this event was answered.
      for (let i = 1; i < mine.length; i++) expect(mine[i].at).toBeGreaterThanOrEqual(mine[i - 1].answeredAt);
      // Attempt numbers only grow.
      for (let i = 1; i < mine.length; i++) expect(mine[i].attempt).toBeGreaterThan(mine[i - 1].attempt);
      // Delivered once, by the last request.
      expect({ id, ok: mine.filter((r) => r.status === 200).length, seen: seen() }).toMatchObject({ ok: 1 });
      expect(mine.at(-1)!.status).toBe(200);
    }
  }

  it('frozen between the pull and the request: each event is sent once, as the newest hand-out', async () => {
    // The worker's first read of the endpoint's health comes after the pull and before the first request.
    await run('freeze', 'get', (id) => `health.${id}`, 3);
  });

  it('a store call between the 2xx and the ack outlasts the ack wait: the hand-out made meanwhile is not sent', async () => {
    // The process runs on meanwhile and keeps pulling: the queue hands the held event out to it again.
    await run('stall', 'put', (id) => `att.${id}.`, 3);
  });
});
