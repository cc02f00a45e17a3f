/**
 * Issue "Fan-out over Socket.IO and SSE with gap-free replay", across replicas and outages: two gateways on
 * one NATS, clients switching replica mid-stream, nats-server killed (-9) and restarted under connected
 * clients, and SIGTERM on a gateway process. What clients received is compared with the stream itself.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { describeWithNats, NatsServerProcess } from './harness/nats-server.js';
import { waitFor } from './harness/wait.js';
import {
  BrowserStream,
  LoadGenerator,
  ResumingSocketSubscriber,
  SocketCollector,
  connectSocket,
  mustSubscribe,
  natsMatch,
  streamUrl,
  subscriberAuth,
  subscriberToken,
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

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describeWithNats('fan-out across replicas and outages', () => {
  describe('two in-process gateways on one NATS', () => {
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

  describe('SIGTERM on a gateway process', () => {
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

        expect(await rawCol.waitForDisconnect(15_000)).toBe('io server disconnect');
        expect(rawCol.closings.map((c) => c.reason)).toEqual(['shutdown']);
        expect(rawCol.timeline).toEqual(['closing', 'disconnect']);
        await waitFor(() => io.closings.length === 1 && io.sessions.length === 2 && io.connected, {
          timeoutMs: 15_000,
          message: 'socket client resumed on p2',
        });
        expect(io.closings[0].reason).toBe('shutdown');
        await waitFor(() => sse.closings.length === 1 && sse.readies.length === 2, {
          timeoutMs: 15_000,
          message: 'SSE client resumed on p2',
        });
        expect(sse.closings[0]).toEqual({ reason: 'shutdown' });
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
});
