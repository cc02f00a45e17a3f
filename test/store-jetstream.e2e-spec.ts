/**
 * The JetStream event store against a real nats-server: the port contract, then what only JetStream
 * has (the stream's config, the idempotency bucket beyond the msgId window, consumer clean-up, outages).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { AppConfig } from '../src/config/app-config.js';
import { StoreUnavailableError, type EventStore, type StoredEvent } from '../src/store/event-store.port.js';
import { JetStreamEventStore, type StoreLogger } from '../src/store/jetstream/jetstream-event-store.adapter.js';
import { idempotencyKey } from '../src/store/jetstream/jetstream-util.js';
import { JsRequester, JsRequestTimeout } from '../src/store/jetstream/js-requester.js';
import { describeWithNats, NatsServerProcess } from './support/nats-server.js';
import { waitFor } from './lib/wait.mjs';
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

    /** The seq an idempotency record holds for a msgId, or undefined (read from the bucket itself). */
    async function recorded(bucket: KV, msgId: string): Promise<number | undefined> {
      const e = await bucket.get(idempotencyKey(msgId));
      return e?.operation === 'PUT' ? Number(e.string()) : undefined;
    }

    it('writes the idempotency record after the answer, also for a duplicate ack', async () => {
      const name = uniqueStreamName('R');
      const { store } = await freshStore(configFor(name));
      const bucket = await new Kvm(admin).open(`${name}_idem`);
      const a = await store.append({ subject: `${PREFIX}.r.t`, msgId: 'rec-a', data: enc.encode('a') });
      await waitFor(async () => (await recorded(bucket, 'rec-a')) === a.seq, { message: 'the record of rec-a' });

      // Stored behind the adapter's back (as by a replica that died before its KV write): the lookup misses,
      // JetStream answers the msgId as a duplicate with the original seq, and that is recorded too.
      const raw = await jetstream(admin).publish(`${PREFIX}.r.t`, 'b', { msgID: 'rec-b' });
      expect(await recorded(bucket, 'rec-b')).toBeUndefined();
      expect(await store.append({ subject: `${PREFIX}.r.t`, msgId: 'rec-b', data: enc.encode('b') })).toEqual({
        seq: raw.seq,
        duplicate: true,
      });
      await waitFor(async () => (await recorded(bucket, 'rec-b')) === raw.seq, { message: 'the record of rec-b' });
      expect(store.idempotencyRecords()).toMatchObject({ pending: 0, written: 2, dropped: 0 });
    });

    it('stop() writes the records still queued before the connection closes', async () => {
      const name = uniqueStreamName('F');
      const config = configFor(name, { duplicateWindow: '1s' });
      const store = new JetStreamEventStore(config, memoryLogger());
      cleanups.push(() => dropStream(name));
      await store.start();
      const ids = Array.from({ length: 200 }, (_, i) => `flush-${i}`);
      const acks = await Promise.all(
        ids.map((id) => store.append({ subject: `${PREFIX}.f.t`, msgId: id, data: enc.encode(id) })),
      );
      // The answers are out; at least the last turn's records cannot have been written yet.
      expect(store.idempotencyRecords().pending).toBeGreaterThan(0);
      await store.stop();
      expect(store.idempotencyRecords()).toEqual({ pending: 0, written: ids.length, dropped: 0 });

      const bucket = await new Kvm(admin).open(`${name}_idem`);
      for (const [i, id] of ids.entries()) expect(await recorded(bucket, id)).toBe(acks[i].seq);
      // And they do their job past the msgId window, for a new instance.
      await new Promise((resolve) => setTimeout(resolve, 1_200)); // JetStream forgets msgIds after 1 s
      const { store: again } = await freshStore(config);
      expect(await again.append({ subject: `${PREFIX}.f.t`, msgId: ids[199], data: enc.encode('x') })).toEqual({
        seq: acks[199].seq,
        duplicate: true,
      });
      expect((await again.state()).lastSeq).toBe(ids.length);
    });

    it("the append path's own request-reply reads PubAcks and KV entries as the client does", async () => {
      const name = uniqueStreamName('Q');
      await freshStore(configFor(name)); // the stream and its bucket
      const conn = await connect({ servers: nats.url });
      cleanups.push(() => conn.close());
      const rq = new JsRequester(conn);
      cleanups.push(async () => rq.close());

      const first = await rq.publish(`${PREFIX}.q.t`, enc.encode('1'), 'q-1', 1_000);
      expect(first).toEqual({ seq: 1, duplicate: false });
      expect(await rq.publish(`${PREFIX}.q.t`, enc.encode('1'), 'q-1', 1_000)).toEqual({ seq: 1, duplicate: true });
      expect(await rq.publish(`${PREFIX}.q.t`, enc.encode('2'), undefined, 1_000)).toEqual({
        seq: 2,
        duplicate: false,
      });
      // A subject no stream binds: no responders, said so (the adapter then re-ensures the stream).
      await expect(rq.publish('nobody.listens', enc.encode('x'), undefined, 1_000)).rejects.toThrow(/no responders/);

      const bucket = await new Kvm(admin).open(`${name}_idem`);
      expect((await bucket.status()).streamInfo.config.allow_direct).toBe(true); // what the adapter relies on
      await bucket.put('k1', '41');
      await bucket.put('k2', '42');
      await bucket.delete('k2');
      expect(await rq.kvGet(`${name}_idem`, 'k1', 1_000)).toEqual({ operation: 'PUT', value: '41' });
      expect(await rq.kvGet(`${name}_idem`, 'k2', 1_000)).toMatchObject({ operation: 'DEL' });
      expect(await rq.kvGet(`${name}_idem`, 'never', 1_000)).toBeNull();
      // A put through it is a KV put (what the idempotency recorder does).
      await rq.publish(`$KV.${name}_idem.k3`, enc.encode('43'), undefined, 1_000);
      expect((await bucket.get('k3'))?.string()).toBe('43');

      // Someone who never answers: a timeout, after about the time asked for.
      const silent = conn.subscribe('silent.service', { callback: () => undefined });
      cleanups.push(async () => silent.unsubscribe());
      const started = Date.now();
      await expect(rq.publish('silent.service', enc.encode('x'), undefined, 300)).rejects.toBeInstanceOf(
        JsRequestTimeout,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(Date.now() - started).toBeLessThan(1_000);
      rq.close();
      await expect(rq.kvGet(`${name}_idem`, 'k1', 1_000)).rejects.toThrow(/closed/);
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
