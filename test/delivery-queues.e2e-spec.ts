/**
 * The delivery-queue port contract on both stores: JetStream durable consumers on a real nats-server, and the
 * embedded log's tables on a real SQLite file.
 */
import { afterAll, beforeAll, jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedEventStore } from '../src/store/embedded/embedded-event-store.adapter.js';
import type { EventStore } from '../src/store/event-store.port.js';
import { JetStreamEventStore } from '../src/store/jetstream/jetstream-event-store.adapter.js';
import { describeWithNats, NatsServerProcess } from './support/nats-server.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { describeDeliveryQueueContract } from './support/delivery-queue-contract.js';
import { describe } from '@jest/globals';

jest.setTimeout(60_000);

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

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
    const stores: EventStore[] = [];
    const open = async () => {
      const s = new JetStreamEventStore(config, quiet);
      stores.push(s);
      await s.start();
      return s;
    };
    const store = await open();
    return {
      store,
      subjectPrefix: config.stream.subjectPrefix,
      reopen: async () => {
        await stores[stores.length - 1].stop();
        return open();
      },
      cleanup: async () => {
        for (const s of stores) await s.stop();
      },
    };
  });
});

describe('delivery queues [embedded]', () => {
  describeDeliveryQueueContract('embedded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookstream-queues-'));
    const config = testConfig({ dataDir: dir });
    const stores: EventStore[] = [];
    const open = async () => {
      const s = new EmbeddedEventStore(config, quiet);
      stores.push(s);
      await s.start();
      return s;
    };
    const store = await open();
    return {
      store,
      subjectPrefix: config.stream.subjectPrefix,
      reopen: async () => {
        await stores[stores.length - 1].stop();
        return open();
      },
      cleanup: async () => {
        for (const s of stores) await s.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
});
