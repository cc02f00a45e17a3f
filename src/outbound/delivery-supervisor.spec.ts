/**
 * The supervisor's refresh log: it starts beside the event store, so a store not open yet at its first refreshes
 * is no failure worth a warning (it was logged once per gateway start, on every bench phase). A store that stays
 * away past the start-up allowance, one that goes away after a refresh went through, and any other error are logged.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { MemoryEventStore } from '../../test/support/memory-event-store.js';
import { testConfig } from '../../test/support/config.js';
import type { DeliveryQueues } from '../store/delivery-queue.port.js';
import { DeliverySupervisor, STARTING_QUIET_MS } from './delivery-supervisor.js';

const FAILED = 'outbound: refreshing endpoints failed; retrying';

let supervisor: DeliverySupervisor | undefined;
afterEach(async () => {
  await supervisor?.stop();
  supervisor = undefined;
});

function setup() {
  let clock = 1_000_000;
  const store = new MemoryEventStore();
  store.setAvailable(false);
  const warnings: string[] = [];
  const logger = {
    info: () => undefined,
    warn: (_o: object, msg?: string) => void warnings.push(msg ?? ''),
    error: () => undefined,
  };
  const queues: DeliveryQueues = {
    open: async () => Promise.reject(new Error('no queue here')),
    delete: async () => undefined,
    list: async () => [],
  };
  supervisor = new DeliverySupervisor(testConfig(), store, queues, store.metadata(), logger, {
    refreshMs: 3_600_000,
    now: () => clock,
  });
  const sender = { send: async () => ({ status: 200, error: null, response: '', retryAfterMs: null, durationMs: 0 }) };
  return {
    store,
    supervisor,
    warnings: () => warnings.filter((w) => w === FAILED).length,
    start: () => supervisor!.start(sender),
    advance: (ms: number) => (clock += ms),
  };
}

describe('DeliverySupervisor: refresh failures', () => {
  it('is quiet while the store is starting, and logs once it goes away after a refresh went through', async () => {
    const t = setup();
    t.start();
    await t.supervisor.refresh();
    t.advance(2_000);
    await t.supervisor.refresh();
    expect(t.warnings()).toBe(0);
    t.store.setAvailable(true);
    await t.supervisor.refresh();
    expect(t.warnings()).toBe(0);
    t.store.setAvailable(false);
    await t.supervisor.refresh();
    expect(t.warnings()).toBe(1);
  });

  it('logs a store that is still away after the start-up allowance', async () => {
    const t = setup();
    t.start();
    await t.supervisor.refresh();
    expect(t.warnings()).toBe(0);
    t.advance(STARTING_QUIET_MS + 1);
    await t.supervisor.refresh();
    expect(t.warnings()).toBe(1);
  });
});
