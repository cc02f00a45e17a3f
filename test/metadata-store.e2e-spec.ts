/**
 * The metadata port (KV buckets beside the event log) on both stores and on the in-memory double: the shared
 * contract, then what only JetStream has (buckets named per stream, several gateways on one NATS, outages).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { AppConfig } from '../src/config/app-config.js';
import { MemoryEventStore } from './support/memory-event-store.js';
import { EmbeddedEventStore } from '../src/store/embedded/embedded-event-store.adapter.js';
import { StoreUnavailableError, type EventStore } from '../src/store/event-store.port.js';
import { JetStreamEventStore } from '../src/store/jetstream/jetstream-event-store.adapter.js';
import { metadataBucketName } from '../src/store/jetstream/jetstream-metadata.adapter.js';
import { MetadataConflictError, type MetadataBucket } from '../src/store/metadata.port.js';
import { DEFAULT_MAX_PAYLOAD } from './harness/nats-server.js';
import { waitFor } from './harness/wait.js';
import { describeEachStore, describeFor, itFor, type TestBackend } from './support/backends.js';
import { uniqueStreamName } from './support/config.js';
import { describeMetadataContract, increment, registerNext, settleAll } from './support/metadata-contract.js';

// Restart and outage cases wait for reconnects; set here because a project-level testTimeout is not applied.
jest.setTimeout(60_000);

/** Store logs, printed with HOOKSTREAM_TEST_LOG=1. */
const log = (level: string) => (obj: object, msg?: string) => {
  if (process.env.HOOKSTREAM_TEST_LOG === '1') console.log(new Date().toISOString(), level, msg, JSON.stringify(obj));
};
const quiet = { info: log('info'), warn: log('warn'), error: log('error') };

/** Is the store refusing this call as unavailable right now (not hanging, not answering)? */
async function refusedAsUnavailable(call: () => Promise<unknown>): Promise<boolean> {
  try {
    await call();
    return false;
  } catch (err) {
    return err instanceof StoreUnavailableError;
  }
}

describeEachStore('MetadataStore', (backend) => {
  const stores: EventStore[] = [];

  beforeAll(() => backend.setup());
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.stop();
  });
  afterAll(() => backend.teardown());

  /**
   * Streams on one nats-server need subjects of their own, and a small size limit: JetStream reserves each stream's
   * maxBytes up front. The nats-server's temp store goes with it at teardown.
   */
  function fileFor(stream = uniqueStreamName('M')): Record<string, unknown> {
    return { stream: { name: stream, subjectPrefix: `md.${stream}`, maxBytes: '1MB' } };
  }

  /** A started adapter of this backend's kind; stopped after the test. */
  async function open(config: AppConfig, on: TestBackend = backend): Promise<EventStore> {
    const store =
      on.kind === 'jetstream' ? new JetStreamEventStore(config, quiet) : new EmbeddedEventStore(config, quiet);
    stores.push(store);
    await store.start();
    return store;
  }

  describeMetadataContract(backend.kind, async () => {
    const file = fileFor();
    const config = backend.configFor(file);
    let current = await open(config);
    return {
      store: current,
      reopen: async () => {
        await current.stop();
        current = await open(backend.configFor(file, config)); // same stream / same DATA_DIR
        return current;
      },
      cleanup: async () => {
        for (const s of stores.splice(0)) await s.stop();
      },
    };
  });

  it('refuses every call with StoreUnavailableError once the store is stopped', async () => {
    const store = await open(backend.configFor(fileFor()));
    const bucket = await store.metadata().bucket('things');
    await bucket.put('k', 'v');
    await store.stop();
    for (const call of [
      () => store.metadata().bucket('things'),
      () => bucket.get('k'),
      () => bucket.create('new', 'v'),
      () => bucket.update('k', 'v', 1),
      () => bucket.put('k', 'v'),
      () => bucket.delete('k'),
      () => bucket.list(),
    ]) {
      await expect(call()).rejects.toBeInstanceOf(StoreUnavailableError);
    }
  });

  describeFor(backend, ['jetstream'], 'JetStream specifics', () => {
    it('keeps each name in its own KV bucket named after the stream: history 1, the stream replicas', async () => {
      const stream = uniqueStreamName('B');
      const store = await open(backend.configFor(fileFor(stream)));
      await (await store.metadata().bucket('endpoints')).put('ep1', 'x');
      await store.metadata().bucket('schemas');

      const nc = await connect({ servers: backend.nats.url });
      try {
        const jsm = await jetstreamManager(nc);
        for (const name of ['endpoints', 'schemas']) {
          const info = await jsm.streams.info(`KV_${metadataBucketName(stream, name)}`);
          expect(info.config).toMatchObject({
            subjects: [`$KV.${stream}-md-${name}.>`],
            max_msgs_per_subject: 1,
            num_replicas: 1,
            storage: 'file',
          });
        }
        expect((await jsm.streams.info(`KV_${stream}-md-endpoints`)).state.messages).toBe(1);
      } finally {
        await nc.close();
      }
    });

    it('refuses a value over the server max_payload as a caller error, and stores nothing', async () => {
      const bucket = await (await open(backend.configFor(fileFor()))).metadata().bucket('big');
      const tooBig = 'x'.repeat(DEFAULT_MAX_PAYLOAD + 1); // the harness's nats-server max_payload
      await expect(bucket.put('k', tooBig)).rejects.toBeInstanceOf(RangeError);
      await expect(bucket.create('k', tooBig)).rejects.toBeInstanceOf(RangeError);
      expect(await bucket.get('k')).toBeNull();
    });

    it('shares buckets between two gateways on one stream, and not with a gateway on another stream', async () => {
      const file = fileFor();
      const a = await (await open(backend.configFor(file))).metadata().bucket('endpoints');
      const b = await (await open(backend.configFor(file))).metadata().bucket('endpoints');
      const elsewhere = await (await open(backend.configFor(fileFor()))).metadata().bucket('endpoints');

      const r1 = await a.create('ep1', 'from a');
      expect(await b.get('ep1')).toEqual({ key: 'ep1', value: 'from a', revision: r1 });
      await expect(b.create('ep1', 'from b')).rejects.toBeInstanceOf(MetadataConflictError);
      const r2 = await b.update('ep1', 'updated by b', r1);
      await expect(a.update('ep1', 'stale a', r1)).rejects.toBeInstanceOf(MetadataConflictError);
      expect(await a.get('ep1')).toEqual({ key: 'ep1', value: 'updated by b', revision: r2 });
      await a.delete('ep1');
      expect(await b.get('ep1')).toBeNull();

      await a.put('ep2', 'a');
      expect(await elsewhere.get('ep2')).toBeNull();
      expect(await elsewhere.list()).toEqual([]);
    });

    it('gives 20 registrations racing across two gateways the versions 1..20, and loses no update', async () => {
      const file = fileFor();
      const buckets: MetadataBucket[] = [];
      for (let i = 0; i < 2; i++)
        buckets.push(await (await open(backend.configFor(file))).metadata().bucket('schemas'));
      const got = await settleAll(
        Array.from({ length: 20 }, (_, i) => registerNext(buckets[i % 2], 'orders.v', `racer-${i}`)),
      );
      expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      for (const [i, version] of got.entries()) {
        expect((await buckets[(i + 1) % 2].get(`orders.v${version}`))?.value).toBe(`racer-${i}`);
      }

      await buckets[0].create('counter', '0');
      await settleAll(
        Array.from({ length: 10 }, async (_, i) => {
          for (let n = 0; n < 3; n++) await increment(buckets[i % 2], 'counter');
        }),
      );
      expect((await buckets[1].get('counter'))?.value).toBe('30');
    });

    it('throws StoreUnavailableError while NATS is down, then works again with the values kept', async () => {
      const own = backend.sibling(); // a nats-server of its own: stopping it must not disturb the other cases
      await own.setup();
      try {
        const store = await open(own.configFor(fileFor()), own);
        const bucket = await store.metadata().bucket('endpoints');
        const r1 = await bucket.create('ep1', 'before the outage');

        await own.nats.kill('SIGTERM');
        await waitFor(() => refusedAsUnavailable(() => bucket.get('ep1')), {
          message: 'get to fail with StoreUnavailableError',
        });
        for (const call of [
          () => store.metadata().bucket('endpoints'),
          () => store.metadata().bucket('new_bucket'),
          () => bucket.create('ep2', 'v'),
          () => bucket.update('ep1', 'v', r1),
          () => bucket.put('ep1', 'v'),
          () => bucket.delete('ep1'),
          () => bucket.list(),
        ]) {
          await expect(call()).rejects.toBeInstanceOf(StoreUnavailableError);
        }

        await own.nats.restart();
        await waitFor(async () => (await bucket.get('ep1'))?.value === 'before the outage', {
          timeoutMs: 30_000,
          message: 'the value to be readable again after the restart',
        });
        expect(await bucket.update('ep1', 'after the outage', r1)).toBeGreaterThan(r1);
        expect((await bucket.list()).map((e) => e.value)).toEqual(['after the outage']);
      } finally {
        for (const s of stores.splice(0)) await s.stop();
        await own.teardown();
      }
    });
  });

  itFor(backend, ['embedded'], 'keeps metadata in the event log file, beside the events', async () => {
    const stream = uniqueStreamName('F');
    const file = fileFor(stream);
    const config = backend.configFor(file);
    const store = await open(config);
    await (await store.metadata().bucket('endpoints')).put('ep1', 'v');
    await store.append({ subject: `md.${stream}.a`, msgId: 'm1', data: new TextEncoder().encode('{}') });
    await store.stop();
    const again = await open(backend.configFor(file, config));
    expect((await again.state()).lastSeq).toBe(1);
    expect((await (await again.metadata().bucket('endpoints')).get('ep1'))?.value).toBe('v');
  });
});

describe('MetadataStore on the in-memory test double', () => {
  describeMetadataContract('memory', async () => ({ store: new MemoryEventStore(), cleanup: async () => undefined }));

  it('is unavailable while the double is, and keeps its entries across recreate()', async () => {
    const store = new MemoryEventStore();
    const bucket = await store.metadata().bucket('endpoints');
    await bucket.put('ep1', 'v');
    store.setAvailable(false);
    await expect(bucket.get('ep1')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.metadata().bucket('endpoints')).rejects.toBeInstanceOf(StoreUnavailableError);
    store.setAvailable(true);
    store.recreate();
    expect((await bucket.get('ep1'))?.value).toBe('v');
  });
});
