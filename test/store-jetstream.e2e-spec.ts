/**
 * The JetStream event store against a real nats-server: the port contract, then what only JetStream
 * has (the stream's config, the idempotency bucket beyond the msgId window, consumer clean-up, outages).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { AppConfig } from '../src/config/app-config.js';
import { StoreUnavailableError, type EventStore, type StoredEvent } from '../src/store/event-store.port.js';
import { JetStreamEventStore, type StoreLogger } from '../src/store/jetstream/jetstream-event-store.adapter.js';
import { describeWithNats, NatsServerProcess } from './harness/nats-server.js';
import { waitFor } from './harness/wait.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { describeEventStoreContract } from './support/store-contract.js';

// Outage cases wait for reconnects; set here because a project-level testTimeout is not applied by Jest.
jest.setTimeout(60_000);

const enc = new TextEncoder();
const dec = new TextDecoder();
const PREFIX = 'hs.events';

/** Keeps log lines in memory (printed with HOOKSTREAM_TEST_LOG=1) so tests can also look at them. */
function memoryLogger(): StoreLogger & { lines: Array<{ level: string; obj: object; msg?: string }> } {
  const lines: Array<{ level: string; obj: object; msg?: string }> = [];
  const log = (level: string) => (obj: object, msg?: string) => {
    lines.push({ level, obj, msg });
    if (process.env.HOOKSTREAM_TEST_LOG === '1') console.log(new Date().toISOString(), level, msg, JSON.stringify(obj));
  };
  return { lines, info: log('info'), warn: log('warn'), error: log('error') };
}

async function readAll(store: EventStore, filter = `${PREFIX}.>`): Promise<StoredEvent[]> {
  const reader = await store.openReader({ fromSeq: 1, filter, untilSeq: Number.MAX_SAFE_INTEGER });
  const out: StoredEvent[] = [];
  for (let page = await reader.next(500); page.length > 0; page = await reader.next(500)) out.push(...page);
  await reader.close();
  return out;
}

/** Appends until stored, retrying StoreUnavailableError with the same msgId, as a webhook provider would. */
async function appendUntilStored(store: EventStore, subject: string, msgId: string, deadlineMs = 60_000) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      return await store.append({ subject, msgId, data: enc.encode(msgId) });
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50)); // provider retry delay
    }
  }
}

describeWithNats('JetStreamEventStore', () => {
  let nats: NatsServerProcess;
  let admin: NatsConnection;
  let jsm: JetStreamManager;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    admin = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    jsm = await jetstreamManager(admin);
  });

  afterAll(async () => {
    await admin?.close();
    await nats?.stop();
  });

  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  function configFor(name: string, stream: Record<string, unknown> = {}, more: Record<string, unknown> = {}) {
    return testConfig({
      natsUrl: nats.url,
      file: {
        stream: { name, subjectPrefix: PREFIX, maxBytes: '64MB', ...stream },
        idempotency: { ttl: '1h' },
        ingest: { publishTimeout: '1s' },
        ...more,
      },
    });
  }

  async function dropStream(name: string): Promise<void> {
    for (const s of [name, `KV_${name}_idem`]) await jsm.streams.delete(s).catch(() => undefined);
  }

  /** A started store on its own stream; stopped and deleted after the test. */
  async function freshStore(config: AppConfig, logger = memoryLogger(), startWaitMs?: number) {
    const store = new JetStreamEventStore(config, logger, { startWaitMs });
    cleanups.push(async () => {
      await store.stop();
      await dropStream(config.stream.name);
    });
    await store.start();
    return { store, logger };
  }

  describeEventStoreContract(
    'jetstream',
    async () => {
      const config = configFor(uniqueStreamName('C'));
      const stores: JetStreamEventStore[] = [];
      const open = async () => {
        const s = new JetStreamEventStore(config, memoryLogger());
        stores.push(s);
        await s.start();
        return s;
      };
      const store = await open();
      return {
        store,
        subjectPrefix: PREFIX,
        reopen: async () => {
          await stores[stores.length - 1].stop();
          return open();
        },
        cleanup: async () => {
          for (const s of stores) await s.stop();
          await dropStream(config.stream.name);
        },
      };
    },
    { reopen: true },
  );

  describe('JetStream specifics', () => {
    it('creates the stream and the idempotency bucket as configured, and updates them on restart', async () => {
      const name = uniqueStreamName('S');
      const config = configFor(name, { maxAge: '1h', duplicateWindow: '30s' });
      const { store } = await freshStore(config);
      const si = await jsm.streams.info(name);
      expect(si.config).toMatchObject({
        subjects: [`${PREFIX}.>`],
        storage: 'file',
        retention: 'limits',
        discard: 'old',
        max_age: 3_600_000_000_000,
        max_bytes: 64 * 1024 ** 2,
        num_replicas: 1,
        duplicate_window: 30_000_000_000,
        allow_direct: true,
      });
      const kv = await jsm.streams.info(`KV_${name}_idem`);
      expect(kv.config).toMatchObject({ max_age: 3_600_000_000_000, max_msgs_per_subject: 1, num_replicas: 1 });
      const epoch = (await store.state()).epoch;
      await store.stop();

      const changed = configFor(name, { maxAge: '2h', duplicateWindow: '1m' }, { idempotency: { ttl: '2h' } });
      const { store: again } = await freshStore(changed);
      expect((await jsm.streams.info(name)).config).toMatchObject({
        max_age: 7_200_000_000_000,
        duplicate_window: 60_000_000_000,
      });
      expect((await jsm.streams.info(`KV_${name}_idem`)).config.max_age).toBe(7_200_000_000_000);
      expect((await again.state()).epoch).toBe(epoch); // an update is the same incarnation
    });

    it('answers duplicates from the bucket after the msgId window, also from a new instance', async () => {
      const name = uniqueStreamName('W');
      const config = configFor(name, { duplicateWindow: '1s' });
      const { store } = await freshStore(config);
      const x = await store.append({ subject: `${PREFIX}.w.t`, msgId: 'win-x', data: enc.encode('x') });
      const y = await store.append({ subject: `${PREFIX}.w.t`, msgId: 'win-y', data: enc.encode('y') });

      // Sleeping is the behaviour under test here: JetStream forgets Nats-Msg-Id after duplicate_window
      // (1 s), and nothing observable through the port says when that happened.
      await new Promise((resolve) => setTimeout(resolve, 1_500));

      expect(await store.append({ subject: `${PREFIX}.w.t`, msgId: 'win-x', data: enc.encode('x') })).toEqual({
        seq: x.seq,
        duplicate: true,
      });
      await store.stop();
      const { store: restarted } = await freshStore(config);
      expect(await restarted.append({ subject: `${PREFIX}.w.t`, msgId: 'win-y', data: enc.encode('y') })).toEqual({
        seq: y.seq,
        duplicate: true,
      });
      expect((await restarted.state()).lastSeq).toBe(y.seq);

      // Control: JetStream alone no longer recognises the msgId, so the bucket is what answered above.
      const raw = await jetstream(admin).publish(`${PREFIX}.w.t`, 'x', { msgID: 'win-x' });
      expect(raw.duplicate).toBe(false);
      expect(raw.seq).toBe(y.seq + 1);
    });

    it('leaves no consumer behind after reads, seqAtTime and tails', async () => {
      const name = uniqueStreamName('L');
      const { store } = await freshStore(configFor(name));
      for (let i = 0; i < 10; i++)
        await store.append({ subject: `${PREFIX}.l.${i % 3}`, msgId: `l-${i}`, data: enc.encode('l') });

      expect(await readAll(store, `${PREFIX}.l.1`)).toHaveLength(3); // completes: consumer deleted on completion
      const partial = await store.openReader({ fromSeq: 1, filter: `${PREFIX}.>`, untilSeq: 100 });
      expect(await partial.next(2)).toHaveLength(2);
      expect((await jsm.streams.info(name)).state.consumer_count).toBe(1);
      await partial.close();
      await store.seqAtTime(Date.now() - 1_000);
      const got: number[] = [];
      const tail = await store.tail(1, (e) => got.push(e.seq));
      await waitFor(() => got.length === 10, { message: 'tail to deliver 10 events' });
      expect((await jsm.streams.info(name)).state.consumer_count).toBe(1);
      await tail.stop();
      await waitFor(async () => (await jsm.streams.info(name)).state.consumer_count === 0, {
        message: 'every consumer to be deleted',
      });
    });

    it('gets a new epoch when the stream is deleted and recreated', async () => {
      const name = uniqueStreamName('E');
      const { store, logger } = await freshStore(configFor(name));
      await store.append({ subject: `${PREFIX}.e.t`, msgId: 'e-1', data: enc.encode('e') });
      const before = await store.state();
      expect(before.lastSeq).toBe(1);
      const tail = await store.tail(1, () => undefined);
      cleanups.push(() => tail.stop());

      await jsm.streams.delete(name);
      // The adapter notices the missing stream (readiness probe) and creates it again.
      await waitFor(() => store.isReady(), { timeoutMs: 15_000, message: 'the stream to be recreated' });
      const after = await store.state();
      expect(after.epoch).not.toBe(before.epoch);
      expect(after).toMatchObject({ firstSeq: 1, lastSeq: 0 });
      expect((await store.append({ subject: `${PREFIX}.e.t`, msgId: 'e-2', data: enc.encode('e') })).seq).toBe(1);
      // The port cannot tell a tail handler about the new epoch; at least the operator is told.
      await waitFor(
        () => logger.lines.some((l) => l.level === 'error' && /recreated under the live tail/.test(l.msg!)),
        {
          message: 'the epoch change to be logged by the tail',
        },
      );
    });
  });

  describe('outages', () => {
    it('start() resolves while NATS is down, keeps trying, and works once NATS is up', async () => {
      const down = await NatsServerProcess.start();
      try {
        await down.kill();
        const name = uniqueStreamName('D');
        const config = testConfig({
          natsUrl: down.url,
          file: { stream: { name, subjectPrefix: PREFIX }, ingest: { publishTimeout: '1s' } },
        });
        const store = new JetStreamEventStore(config, memoryLogger(), { startWaitMs: 300 });
        await store.start();
        expect(await store.isReady()).toBe(false);
        await expect(store.append({ subject: `${PREFIX}.d.t`, msgId: 'd-1', data: enc.encode('d') })).rejects.toThrow(
          StoreUnavailableError,
        );
        await down.restart();
        await waitFor(() => store.isReady(), { timeoutMs: 20_000, message: 'the store to connect' });
        expect(await store.append({ subject: `${PREFIX}.d.t`, msgId: 'd-1', data: enc.encode('d') })).toEqual({
          seq: 1,
          duplicate: false,
        });
        await store.stop();

        // stop() while NATS has never been reachable must not hang in the connect loop.
        await down.kill();
        const never = new JetStreamEventStore(config, memoryLogger(), { startWaitMs: 100 });
        await never.start();
        await never.stop();
      } finally {
        await down.stop();
      }
    });

    it('fails appends fast while NATS is down and recovers on the same instance with nothing lost', async () => {
      const name = uniqueStreamName('K');
      const config = configFor(name);
      const { store } = await freshStore(config);
      const acked = [];
      for (let i = 0; i < 20; i++) {
        acked.push(
          await store.append({ subject: `${PREFIX}.k.${i % 2}`, msgId: `k-${i}`, data: enc.encode(`k-${i}`) }),
        );
      }

      await nats.kill('SIGKILL');
      const started = Date.now();
      let guard: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        store.append({ subject: `${PREFIX}.k.0`, msgId: 'k-down', data: enc.encode('x') }).then(
          (r) => ({ resolved: r }),
          (err: unknown) => ({ rejected: err }),
        ),
        new Promise<{ hung: true }>((resolve) => (guard = setTimeout(() => resolve({ hung: true }), 10_000))),
      ]);
      clearTimeout(guard);
      const elapsed = Date.now() - started;
      expect(outcome).toEqual({ rejected: expect.any(StoreUnavailableError) });
      expect(elapsed).toBeLessThanOrEqual(config.ingest.publishTimeoutMs + 1_000);
      await waitFor(async () => !(await store.isReady()), { message: 'isReady() to turn false' });

      await nats.restart();
      await waitFor(() => store.isReady(), { timeoutMs: 20_000, message: 'the store to reconnect' });
      const after = await appendUntilStored(store, `${PREFIX}.k.0`, 'k-after', 20_000);
      expect(after.duplicate).toBe(false);
      const events = await readAll(store);
      const byId = new Map(events.map((e) => [dec.decode(e.data), e.seq]));
      for (const [i, a] of acked.entries()) expect(byId.get(`k-${i}`)).toBe(a.seq);
      expect(byId.get('k-after')).toBe(after.seq);
    });

    it('keeps the tail gap-free and duplicate-free across a kill -9 and restart of NATS', async () => {
      const name = uniqueStreamName('T');
      const { store, logger } = await freshStore(configFor(name));
      const got: number[] = [];
      const tail = await store.tail(1, (e) => got.push(e.seq));
      cleanups.push(() => tail.stop());

      const total = 300;
      let produced = 0;
      const producer = (async () => {
        for (let i = 0; i < total; i++) {
          await appendUntilStored(store, `${PREFIX}.t.${i % 5}`, `t-${i}`);
          produced = i + 1;
        }
      })();

      await waitFor(() => got.length >= 50, { message: 'the tail to deliver before the outage' });
      await nats.kill('SIGKILL');
      await nats.restart();
      await producer;
      expect(produced).toBe(total);
      const st = await store.state();
      expect(st.lastSeq).toBe(total); // retries with the same msgId stored nothing twice
      await waitFor(() => got.length >= total, { timeoutMs: 40_000, message: 'the tail to catch up after restart' });
      expect(got).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(logger.lines.some((l) => l.msg === 'NATS reconnected')).toBe(true);
    });
  });
});
