/**
 * The delivery-queue port contract on both stores: JetStream durable consumers on a real nats-server, and the
 * embedded log's tables on a real SQLite file. Plus, on the embedded log, what keeps a thousand queues cheap: an
 * event wakes only the queues it matches, and a fetch that hands nothing out commits nothing.
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, jest } from '@jest/globals';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedEventStore } from '../src/store/embedded/embedded-event-store.adapter.js';
import { EmbeddedDeliveryQueues } from '../src/store/embedded/embedded-delivery-queues.js';
import { DB_FILE } from '../src/store/embedded/embedded-schema.js';
import type { EventStore } from '../src/store/event-store.port.js';
import { JetStreamEventStore } from '../src/store/jetstream/jetstream-event-store.adapter.js';
import { describeWithNats, NatsServerProcess } from './support/nats-server.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { describeDeliveryQueueContract } from './support/delivery-queue-contract.js';
import { describe } from '@jest/globals';

jest.setTimeout(60_000);

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** A started store the contract can stop and open again on the same data; cleanup stops every one it opened. */
async function reopenable(subjectPrefix: string, make: () => EventStore, removeData: () => void = () => undefined) {
  const stores: EventStore[] = [];
  const open = async () => {
    const s = make();
    stores.push(s);
    await s.start();
    return s;
  };
  const store = await open();
  return {
    store,
    subjectPrefix,
    reopen: async () => {
      await stores[stores.length - 1].stop();
      return open();
    },
    cleanup: async () => {
      for (const s of stores) await s.stop();
      removeData();
    },
  };
}

describeWithNats('delivery queues [jetstream]', () => {
  let nats: NatsServerProcess;
  beforeAll(async () => {
    nats = await NatsServerProcess.start();
  });
  afterAll(async () => {
    await nats?.stop();
  });

  describeDeliveryQueueContract('jetstream', async () => {
    // Streams of one server may not share subjects: each case gets its own prefix.
    const name = uniqueStreamName('Q');
    const config = testConfig({
      natsUrl: nats.url,
      file: { stream: { name, subjectPrefix: name.toLowerCase(), maxBytes: '8MB' } },
    });
    return reopenable(config.stream.subjectPrefix, () => new JetStreamEventStore(config, quiet));
  });
});

describe('delivery queues [embedded]', () => {
  describeDeliveryQueueContract('embedded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookstream-queues-'));
    const config = testConfig({ dataDir: dir });
    return reopenable(
      config.stream.subjectPrefix,
      () => new EmbeddedEventStore(config, quiet),
      () => rmSync(dir, { recursive: true, force: true }),
    );
  });
});

describe('delivery queues [embedded]: many queues stay cheap', () => {
  let dir: string;
  let store: EmbeddedEventStore;
  const prefix = testConfig({ dataDir: '/unused' }).stream.subjectPrefix;
  const opts = (filter: string) => ({ filter: `${prefix}.${filter}`, startSeq: 1, maxInFlight: 10, ackWaitMs: 30_000 });
  const append = (s: string) =>
    store.append({ subject: `${prefix}.${s}`, msgId: `m-${s}-${Math.random()}`, data: new TextEncoder().encode('{}') });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hookstream-queues-'));
    store = new EmbeddedEventStore(testConfig({ dataDir: dir }), quiet);
    await store.start();
  });
  afterEach(async () => {
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Every commit appends to the write-ahead log (no checkpoint runs at this size). */
  const walBytes = () => statSync(join(dir, `${DB_FILE}-wal`)).size;

  it('a fetch that hands nothing out commits nothing, even past events of other queues', async () => {
    const q = await store.deliveryQueues().open('idle', opts('a.>'));
    expect(await q.fetch(10, 0)).toEqual([]);
    for (let i = 0; i < 5; i++) await append('b.x'); // for other queues only
    const before = walBytes();
    for (let i = 0; i < 3; i++) expect(await q.fetch(10, 0)).toEqual([]);
    expect(walBytes()).toBe(before);
    // Skipped all the same: the next match is the next hand-out, and the backlog counts none of them.
    await append('a.x');
    expect((await q.fetch(10, 0)).map((i) => i.subject)).toEqual([`${prefix}.a.x`]);
    expect(await q.state()).toMatchObject({ backlog: 0, inFlight: 1 });
  });

  it('a new event wakes the fetches of the queues it matches, not the others', async () => {
    const queues = store.deliveryQueues() as EmbeddedDeliveryQueues;
    const a = await queues.open('wa', opts('a.>'));
    const b = await queues.open('wb', opts('b.>'));
    await a.fetch(10, 0); // the tail is running
    const looked: string[] = [];
    const takeDue = queues.takeDue.bind(queues);
    queues.takeDue = (name, max) => (looked.push(name), takeDue(name, max));
    const fb = b.fetch(10, 30_000);
    const fa = a.fetch(10, 30_000);
    expect(looked.sort()).toEqual(['wa', 'wb']); // each looked once, found nothing and waits
    await append('a.x');
    expect((await fa).map((i) => i.subject)).toEqual([`${prefix}.a.x`]);
    expect(looked.filter((n) => n === 'wb')).toHaveLength(1); // b was not woken by a's event
    await append('b.y');
    expect((await fb).map((i) => i.subject)).toEqual([`${prefix}.b.y`]);
  });
});
