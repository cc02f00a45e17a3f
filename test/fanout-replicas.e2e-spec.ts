/**
 * Issue "Fan-out over Socket.IO and SSE with gap-free replay", across replicas and outages. On JetStream: two
 * gateways on one NATS, clients switching replica mid-stream, nats-server killed (-9) and restarted under
 * connected clients, and SIGTERM on one of two gateway processes. On the embedded log (one process owns its
 * DATA_DIR): the gateway process killed (-9) right after 1,000 acknowledged webhooks, and SIGTERM, each followed
 * by a restart on the same directory. What clients received is compared with what is stored.
 */
import { afterAll, afterEach, beforeAll, expect, it, jest } from '@jest/globals';
import { NatsServerProcess } from './support/nats-server.js';
import { waitFor } from './lib/wait.mjs';
import { describeEachStore, describeFor, readDataDir } from './support/backends.js';
import {
  BrowserStream,
  LoadGenerator,
  ResumingSocketSubscriber,
  SocketCollector,
  SseReader,
  connectSocket,
  expectStrictlyIncreasing,
  mustSubscribe,
  natsMatch,
  streamUrl,
  subscriberAuth,
  subscriberToken,
  publishBatch,
  type PublishItem,
} from './support/clients.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { GatewayProcess, startGateway, type RunningGateway } from './support/gateway.js';
import { StreamInspector } from './support/nats-inspect.js';
import { E2E_SOURCES, post, standardWebhook } from './support/signers.js';

// The project-level testTimeout does not reach tests in ESM mode; set it here.
jest.setTimeout(90_000);

const fileConfig = (streamName: string) => ({
  stream: { name: streamName },
  sources: E2E_SOURCES,
  auth: subscriberAuth(),
  limits: { ringEvents: 256 },
});

const ready = async (url: string) => {
  try {
    return (await fetch(`${url}/readyz`)).status === 200;
  } catch {
    return false;
  }
};

/** Seqs of the stored messages after `afterSeq` that match `pattern`, read through the NATS API. */
async function storedSeqs(inspect: StreamInspector, pattern: string, afterSeq = 0): Promise<number[]> {
  return (await inspect.all()).filter((m) => m.seq > afterSeq && natsMatch(pattern, m.subject)).map((m) => m.seq);
}

const tick =
  (tag: string) =>
  (i: number): PublishItem => ({
    subject: i % 4 === 0 ? `events.rep.${tag}.a` : `events.rep.${tag}.b`,
    data: { i },
  });

/** A Socket.IO client told why before it was dropped: `closing` {reason: 'shutdown'}, then the server's disconnect. */
async function expectClosedForShutdown(col: SocketCollector): Promise<void> {
  expect(await col.waitForDisconnect(15_000)).toBe('io server disconnect');
  expect(col.closings.map((c) => c.reason)).toEqual(['shutdown']);
  expect(col.timeline).toEqual(['closing', 'disconnect']);
}

/** Both resuming clients got the shutdown hint once and are live again on a second session. */
async function expectResumedAfterShutdown(
  io: ResumingSocketSubscriber,
  sse: BrowserStream,
  where: string,
  timeoutMs: number,
): Promise<void> {
  await waitFor(() => io.closings.length === 1 && io.sessions.length === 2 && io.connected, {
    timeoutMs,
    message: `socket client resumed on ${where}`,
  });
  expect(io.closings[0].reason).toBe('shutdown');
  await waitFor(() => sse.closings.length === 1 && sse.readies.length === 2, {
    timeoutMs,
    message: `SSE client resumed on ${where}`,
  });
  expect(sse.closings[0]).toEqual({ reason: 'shutdown' });
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describeEachStore('fan-out across replicas and outages', (backend) => {
  // JetStream-only: replicas share one stream, and NATS itself is killed.
  describeFor(backend, ['jetstream'], 'two in-process gateways on one NATS', () => {
    let nats: NatsServerProcess;
    let a: RunningGateway;
    let b: RunningGateway;
    let inspect: StreamInspector;
    let token: string;
    const closers: (() => unknown)[] = [];

    beforeAll(async () => {
      nats = await NatsServerProcess.start();
      const stream = uniqueStreamName('FANREP');
      a = await startGateway(testConfig({ natsUrl: nats.url, file: fileConfig(stream) }));
      b = await startGateway(testConfig({ natsUrl: nats.url, file: fileConfig(stream) }));
      await waitFor(async () => (await ready(a.url)) && (await ready(b.url)), { message: 'both gateways ready' });
      inspect = await StreamInspector.open(nats.url, stream);
      token = await subscriberToken(['events.>']);
    }, 30_000);

    afterEach(async () => {
      for (const close of closers.splice(0)) await close();
    });

    afterAll(async () => {
      await inspect?.close();
      await a?.close();
      await b?.close();
      await nats?.stop();
    }, 30_000);

    it('delivers to a client on the second gateway what was ingested through the first, with the same cursors', async () => {
      const socket = await connectSocket(b.url, token);
      closers.push(() => socket.close());
      const col = new SocketCollector(socket);
      const { id } = await mustSubscribe(socket, { subjects: ['events.acme.>'] });
      const sse = new BrowserStream(streamUrl(b.url, { subject: 'events.acme.>' }), { token });
      closers.push(() => sse.close());
      await waitFor(() => sse.readies.length === 1, { message: 'SSE ready on b' });

      const sent: { seq: number; cursor: string }[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await post(a.url, standardWebhook({ type: `cross.e${i}`, i }));
        expect(res.status).toBe(202);
        sent.push(res.body as { seq: number; cursor: string });
      }
      await col.waitForEvents(id, 5);
      await sse.waitForMessages(5);
      expect(col.events(id).map((d) => [d.seq, d.cursor])).toEqual(sent.map((s) => [s.seq, s.cursor]));
      expect(sse.messages.map((m) => [m.data.seq, m.lastEventId])).toEqual(sent.map((s) => [s.seq, s.cursor]));
    });

    it('a client that switches replicas mid-stream resumes by cursor with no gap and no duplicate', async () => {
      // Socket.IO: starts on a, then b, then a again.
      const replicas = [a.url, b.url];
      const io = new ResumingSocketSubscriber(() => replicas, token, ['events.rep.switch.>'], { from: 'latest' });
      closers.push(() => io.close());
      // SSE with a partial filter (every fourth event), moved between replicas on reconnect as a load balancer would.
      let target = a.url;
      const sse = new BrowserStream(streamUrl(a.url, { subject: 'events.rep.switch.a' }), {
        token,
        route: (u) => u.replace(/^http:\/\/[^/]+/, target),
      });
      closers.push(() => sse.close());
      await io.start();
      await waitFor(() => sse.readies.length === 1, { message: 'SSE ready on a' });
      // Both subscriptions start at or after this point; nothing else publishes meanwhile.
      const startSeq = await inspect.lastSeq();

      const load = new LoadGenerator({ urls: [a.url, b.url], ratePerSecond: 250, maxBatch: 50, item: tick('switch') });
      try {
        for (let hop = 1; hop <= 2; hop++) {
          await waitFor(() => io.deliveries.length >= 150 * hop && sse.messages.length >= 35 * hop, {
            timeoutMs: 20_000,
            message: `deliveries before hop ${hop} (io ${io.deliveries.length}, sse ${sse.messages.length})`,
          });
          io.drop();
          target = hop % 2 === 1 ? b.url : a.url;
          sse.cut();
          await waitFor(() => io.sessions.length === hop + 1 && io.connected, {
            message: `socket resumed (hop ${hop})`,
          });
          await waitFor(() => sse.readies.length === hop + 1, { message: `SSE resumed (hop ${hop})` });
        }
        await waitFor(() => io.deliveries.length >= 450, {
          timeoutMs: 20_000,
          message: 'deliveries after the last hop',
        });
        await load.stop();
        expect(load.failures).toBe(0);

        expect(io.sessions.map((s) => s.url)).toEqual([a.url, b.url, a.url]);
        expect(sse.requests.map((r) => new URL(r.url).origin)).toEqual([a.url, b.url, a.url]);
        // Each SSE reconnection sent the last id it saw, and the new stream started exactly there.
        for (const i of [1, 2]) {
          expect(sse.messages.map((m) => m.lastEventId)).toContain(sse.requests[i].lastEventId);
          expect(sse.readies[i].cursor).toBe(sse.requests[i].lastEventId);
        }

        const expectedIo = await storedSeqs(inspect, 'events.rep.switch.>', startSeq);
        const expectedSse = await storedSeqs(inspect, 'events.rep.switch.a', startSeq);
        await waitFor(() => io.deliveries.length >= expectedIo.length && sse.messages.length >= expectedSse.length, {
          timeoutMs: 20_000,
          message: `clients caught up (io ${io.deliveries.length}/${expectedIo.length}, sse ${sse.messages.length}/${expectedSse.length})`,
        });
        expect(io.seqs()).toEqual(expectedIo);
        expect(sse.seqs()).toEqual(expectedSse);
        expect(io.gaps).toEqual([]);
        expect(sse.gaps).toEqual([]);
      } finally {
        await load.stop();
      }
    });

    it('keeps delivering with no gap when nats-server is killed (-9) and restarted under connected clients', async () => {
      const io = new ResumingSocketSubscriber(() => [a.url], token, ['events.rep.outage.>'], { from: 'latest' });
      closers.push(() => io.close());
      const sse = new BrowserStream(streamUrl(b.url, { subject: 'events.rep.outage.>' }), { token });
      closers.push(() => sse.close());
      await io.start();
      await waitFor(() => sse.readies.length === 1, { message: 'SSE ready' });
      const startSeq = await inspect.lastSeq();

      const load = new LoadGenerator({ urls: [a.url, b.url], ratePerSecond: 100, maxBatch: 20, item: tick('outage') });
      try {
        await waitFor(() => io.deliveries.length >= 100 && sse.messages.length >= 100, {
          timeoutMs: 20_000,
          message: 'deliveries before the outage',
        });
        await nats.kill('SIGKILL');
        await waitFor(async () => !(await ready(a.url)), { message: 'gateway a sees NATS down' });
        const acceptedWhileDown = load.accepted;
        await nats.restart();
        await waitFor(async () => (await ready(a.url)) && (await ready(b.url)), {
          timeoutMs: 30_000,
          message: 'gateways ready after the restart',
        });
        await waitFor(() => load.accepted >= acceptedWhileDown + 200, {
          timeoutMs: 30_000,
          message: 'ingest accepted again after the restart',
        });
        await load.stop();
        expect(load.failures).toBeGreaterThan(0); // the outage was real: some batches got 503

        const expected = await storedSeqs(inspect, 'events.rep.outage.>', startSeq);
        await waitFor(() => io.deliveries.length >= expected.length && sse.messages.length >= expected.length, {
          timeoutMs: 30_000,
          message: `clients caught up (io ${io.deliveries.length}, sse ${sse.messages.length} of ${expected.length})`,
        });
        process.stderr.write(
          `NATS restart: socket sessions ${io.sessions.length}, SSE connections ${sse.requests.length}, ` +
            `${expected.length} events expected, ${load.failures} batches refused during the outage\n`,
        );
        expect(io.seqs()).toEqual(expected);
        expect(sse.seqs()).toEqual(expected);
        expect(io.gaps).toEqual([]);
        expect(sse.gaps).toEqual([]);
      } finally {
        await load.stop();
      }
    });
  });

  // JetStream-only: two processes on one store.
  describeFor(backend, ['jetstream'], 'SIGTERM on a gateway process', () => {
    let nats: NatsServerProcess;
    let p1: GatewayProcess;
    let p2: GatewayProcess;
    let inspect: StreamInspector;
    const closers: (() => unknown)[] = [];

    beforeAll(async () => {
      nats = await NatsServerProcess.start();
      const stream = uniqueStreamName('FANTERM');
      [p1, p2] = await Promise.all([
        GatewayProcess.start(fileConfig(stream), { NATS_URL: nats.url }),
        GatewayProcess.start(fileConfig(stream), { NATS_URL: nats.url }),
      ]);
      await waitFor(async () => (await ready(p1.url)) && (await ready(p2.url)), {
        timeoutMs: 20_000,
        message: 'both gateway processes ready',
      });
      inspect = await StreamInspector.open(nats.url, stream);
    }, 60_000);

    afterAll(async () => {
      for (const close of closers.splice(0)) await close();
      await inspect?.close();
      await p1?.dispose();
      await p2?.dispose();
      await nats?.stop();
    }, 30_000);

    it('closes clients with a `shutdown` hint; they resume on the other process with no gap', async () => {
      const token = await subscriberToken(['events.>']);
      const replicas = [p1.url];
      // Socket.IO: a raw socket (to see the hint and its order) and a resuming client.
      const raw = await connectSocket(p1.url, token);
      closers.push(() => raw.close());
      const rawCol = new SocketCollector(raw);
      await mustSubscribe(raw, { subjects: ['events.rep.term.>'] });
      const io = new ResumingSocketSubscriber(() => replicas, token, ['events.rep.term.>'], { from: 'latest' });
      closers.push(() => io.close());
      await io.start();
      // SSE: the eventsource client, moved to the other process when it reconnects (as a load balancer would).
      let target = p1.url;
      const sse = new BrowserStream(streamUrl(p1.url, { subject: 'events.rep.term.>' }), {
        token,
        route: (u) => u.replace(/^http:\/\/[^/]+/, target),
      });
      closers.push(() => sse.close());
      await waitFor(() => sse.readies.length === 1, { message: 'SSE ready on p1' });

      // Ingest goes through the other process: clients on p1 receive it (cross-process fan-out).
      // Every subscription above started at or after startSeq; nothing else publishes meanwhile.
      const startSeq = await inspect.lastSeq();
      const load = new LoadGenerator({ urls: [p2.url], ratePerSecond: 150, maxBatch: 30, item: tick('term') });
      try {
        await waitFor(
          () => io.deliveries.length >= 100 && sse.messages.length >= 100 && rawCol.events().length >= 100,
          {
            timeoutMs: 20_000,
            message: 'deliveries on p1 before SIGTERM',
          },
        );
        replicas[0] = p2.url;
        target = p2.url;
        const pid = p1.pid;
        p1.signal('SIGTERM');

        await expectClosedForShutdown(rawCol);
        await expectResumedAfterShutdown(io, sse, 'p2', 15_000);
        await waitFor(() => !alive(pid), { timeoutMs: 20_000, message: 'p1 exited' });

        const afterSwitch = load.accepted;
        await waitFor(() => load.accepted >= afterSwitch + 150, {
          timeoutMs: 20_000,
          message: 'load after the switch',
        });
        await load.stop();
        expect(load.failures).toBe(0);

        expect(io.sessions.map((s) => s.url)).toEqual([p1.url, p2.url]);
        expect(new URL(sse.requests[1].url).origin).toBe(p2.url);
        expect(sse.messages.map((m) => m.lastEventId)).toContain(sse.requests[1].lastEventId);
        expect(sse.readies[1].cursor).toBe(sse.requests[1].lastEventId);

        const expectedIo = await storedSeqs(inspect, 'events.rep.term.>', startSeq);
        const expectedSse = expectedIo;
        await waitFor(() => io.deliveries.length >= expectedIo.length && sse.messages.length >= expectedSse.length, {
          timeoutMs: 20_000,
          message: `clients caught up (io ${io.deliveries.length}/${expectedIo.length}, sse ${sse.messages.length}/${expectedSse.length})`,
        });
        expect(io.seqs()).toEqual(expectedIo);
        expect(sse.seqs()).toEqual(expectedSse);
        expect(io.gaps).toEqual([]);
        expect(sse.gaps).toEqual([]);
        // The process drained: no leftover replay consumers from p1 on the stream (p2's tap remains).
        await waitFor(async () => (await inspect.consumerCount()) <= 1, {
          timeoutMs: 10_000,
          message: 'only the surviving live tap consumer left',
        });
      } finally {
        await load.stop();
      }
    });
  });

  // Embedded-only: one process owns its DATA_DIR, so an outage is that process going away and coming back.
  describeFor(backend, ['embedded'], 'the gateway process on the embedded log, stopped and restarted', () => {
    const procs: GatewayProcess[] = [];
    const closers: (() => unknown)[] = [];

    beforeAll(() => backend.setup());

    afterEach(async () => {
      for (const close of closers.splice(0)) await close();
      for (const p of procs.splice(0)) await p.dispose();
    });

    afterAll(() => backend.teardown());

    it('loses none of 1,000 acknowledged webhooks to kill -9: after a restart all are stored, and clients resuming from early cursors get them in order, once', async () => {
      const env = backend.processEnv();
      const p = await GatewayProcess.start(fileConfig(uniqueStreamName('EMBKILL')), env);
      procs.push(p);
      const token = await subscriberToken(['events.acme.>']);
      // The position before the first webhook, as a client that subscribed then would hold it.
      const first = await connectSocket(p.url, token);
      const { cursor: early } = await mustSubscribe(first, { subjects: ['events.acme.>'] });
      first.close();

      const N = 1000;
      const acked: { id: string; seq: number; cursor: string }[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = next++; i < N; i = next++) {
            const res = await post(p.url, standardWebhook({ type: 'crash.test', i }, { id: `msg_crash_${i}` }));
            if (res.status !== 202) throw new Error(`webhook ${i} answered ${res.status}: ${JSON.stringify(res.body)}`);
            acked.push(res.body as { id: string; seq: number; cursor: string });
          }
        }),
      );
      expect(acked).toHaveLength(N);
      // kill -9 right after the last acknowledgement, then start again on the same port and DATA_DIR.
      await p.restart();

      acked.sort((x, y) => x.seq - y.seq);
      const seqs = acked.map((a) => a.seq);
      expect(new Set(acked.map((a) => a.id)).size).toBe(N);
      expectStrictlyIncreasing(seqs);

      const socket = await connectSocket(p.url, token);
      closers.push(() => socket.close());
      const col = new SocketCollector(socket);
      const { id } = await mustSubscribe(socket, { subjects: ['events.acme.>'], cursor: early });
      // SSE resumes from the first event's cursor (Last-Event-ID), as a browser that saw only that one would.
      const sse = await SseReader.open(streamUrl(p.url, { subject: 'events.acme.>' }), {
        token,
        lastEventId: acked[0].cursor,
      });
      closers.push(() => sse.close());
      await col.waitForEvents(id, N, 30_000);
      await sse.waitForDeliveries(N - 1, 30_000);
      // A sentinel proves nothing else was queued before it.
      const sentinel = await post(p.url, standardWebhook({ type: 'crash.sentinel' }, { id: 'msg_crash_sentinel' }));
      expect(sentinel.status).toBe(202);
      await col.waitForEvents(id, N + 1);
      await sse.waitForDeliveries(N);
      expect(col.seqs(id)).toEqual([...seqs, sentinel.body.seq]);
      expect(col.events(id).map((d) => d.cursor)).toEqual([...acked.map((a) => a.cursor), sentinel.body.cursor]);
      expect(col.events(id).map((d) => d.event.id)).toEqual([...acked.map((a) => a.id), 'msg_crash_sentinel']);
      expect(sse.deliveries().map((d) => d.seq)).toEqual([...seqs.slice(1), sentinel.body.seq]);
      expect(col.gaps()).toEqual([]);
      expect(sse.named('gap')).toEqual([]);
      // The idempotency record survived the crash too.
      const again = await post(p.url, standardWebhook({ type: 'crash.test', i: 500 }, { id: 'msg_crash_500' }));
      expect(again.status).toBe(200);
      expect(again.body).toEqual({
        status: 'duplicate',
        id: 'msg_crash_500',
        seq: acked.find((a) => a.id === 'msg_crash_500')?.seq,
      });

      // And on disk, once the process has let go of the directory.
      for (const close of closers.splice(0)) await close();
      await p.stop('SIGTERM');
      const { events } = await readDataDir(env.DATA_DIR);
      expect(events.map((e) => [e.seq, e.id, e.msgId])).toEqual([
        ...acked.map((a) => [a.seq, a.id, `acme:${a.id}`]),
        [sentinel.body.seq, 'msg_crash_sentinel', 'acme:msg_crash_sentinel'],
      ]);
    });

    it('closes clients with a `shutdown` hint on SIGTERM; they resume on the restarted process with no gap', async () => {
      const env = backend.processEnv();
      const p = await GatewayProcess.start(fileConfig(uniqueStreamName('EMBTERM')), env);
      procs.push(p);
      const token = await subscriberToken(['events.>']);
      const raw = await connectSocket(p.url, token);
      closers.push(() => raw.close());
      const rawCol = new SocketCollector(raw);
      await mustSubscribe(raw, { subjects: ['events.rep.term.>'] });
      const io = new ResumingSocketSubscriber(() => [p.url], token, ['events.rep.term.>'], { from: 'latest' });
      closers.push(() => io.close());
      await io.start();
      // SSE with a partial filter (every fourth event).
      const sse = new BrowserStream(streamUrl(p.url, { subject: 'events.rep.term.a' }), { token });
      closers.push(() => sse.close());
      await waitFor(() => sse.readies.length === 1, { message: 'SSE ready' });

      // Nothing was stored before these subscriptions: every stored event is expected.
      const load = new LoadGenerator({ urls: [p.url], ratePerSecond: 150, maxBatch: 30, item: tick('term') });
      try {
        await waitFor(() => io.deliveries.length >= 100 && sse.messages.length >= 25 && rawCol.events().length >= 100, {
          timeoutMs: 20_000,
          message: 'deliveries before SIGTERM',
        });
        const pid = p.pid;
        p.signal('SIGTERM');
        // The contract is `closing` first, then the server's own disconnect: shutdown waits for both to flush.
        await expectClosedForShutdown(rawCol);
        await waitFor(() => !alive(pid), { timeoutMs: 20_000, message: 'the process exited' });
        await p.restart(); // same port, same DATA_DIR

        await expectResumedAfterShutdown(io, sse, 'the restarted process', 20_000);
        const afterRestart = load.accepted;
        await waitFor(() => load.accepted >= afterRestart + 150, {
          timeoutMs: 20_000,
          message: 'load after the restart',
        });
        await load.stop();

        // The reconnection that succeeded sent the last id seen, and the new stream started exactly there.
        const resumed = sse.requests.filter((r) => r.status === 200)[1];
        expect(sse.messages.map((m) => m.lastEventId)).toContain(resumed.lastEventId);
        expect(sse.readies[1].cursor).toBe(resumed.lastEventId);

        // A sentinel both filters match: a client that has it has everything stored before it (or a gap to show).
        const [sentinel] = await publishBatch(p.url, [{ subject: 'events.rep.term.a', data: { sentinel: true } }]);
        await waitFor(() => io.seqs().includes(sentinel.seq) && sse.seqs().includes(sentinel.seq), {
          timeoutMs: 20_000,
          message: `clients caught up to the sentinel (io ${io.deliveries.length}, sse ${sse.messages.length})`,
        });
        for (const close of closers.splice(0)) await close();
        await p.stop('SIGTERM');
        const { events } = await readDataDir(env.DATA_DIR);
        const expectedIo = events.filter((e) => natsMatch('events.rep.term.>', e.subject)).map((e) => e.seq);
        const expectedSse = events.filter((e) => natsMatch('events.rep.term.a', e.subject)).map((e) => e.seq);
        expect(expectedIo).toEqual(expect.arrayContaining(load.results.map((r) => r.seq)));
        expect(expectedIo[expectedIo.length - 1]).toBe(sentinel.seq);
        expect(io.seqs()).toEqual(expectedIo);
        expect(sse.seqs()).toEqual(expectedSse);
        expect(io.gaps).toEqual([]);
        expect(sse.gaps).toEqual([]);
      } finally {
        await load.stop();
      }
    });
  });
});
