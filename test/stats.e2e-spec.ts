/**
 * `GET /v1/stats` against a gateway on a real nats-server: refused without an API key; with one, its numbers move
 * as events are published and delivered over Socket.IO, SSE and an outbound webhook to a real receiver, and they
 * are the numbers `/metrics` serves.
 */
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import type { Socket } from 'socket.io-client';
import type { StatsBody } from '../src/protocol/stats.js';
import { waitFor } from './lib/wait.mjs';
import { connectSocket, mustSubscribe, SocketCollector, SseReader, streamUrl } from './support/clients.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import type { RunningGateway } from './support/gateway.js';
import { describeWithNats, NatsServerProcess } from './support/nats-server.js';
import {
  api,
  createEndpoint,
  outboundFile,
  PLAIN_KEY,
  PUB_KEY,
  publish,
  Receiver,
  startOutboundGateway,
} from './support/outbound.js';

jest.setTimeout(60_000);

/** One sample of a Prometheus text exposition: `name{labels} value`. */
function sample(text: string, name: string, labels = ''): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  if (line === undefined) throw new Error(`no ${name}{${labels}} in /metrics`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describeWithNats('GET /v1/stats', () => {
  let nats: NatsServerProcess;
  let gw: RunningGateway;
  let rx: Receiver;

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    [gw, rx] = await Promise.all([
      startOutboundGateway(testConfig({ natsUrl: nats.url, file: outboundFile(uniqueStreamName('STATS')) })),
      Receiver.start(),
    ]);
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
  });

  afterAll(async () => {
    await rx?.close();
    await gw?.close();
    await nats?.stop();
  });

  const stats = async (): Promise<StatsBody> => {
    const res = await api(gw.url, 'GET', '/v1/stats', PLAIN_KEY);
    expect(res.status).toBe(200);
    return res.body as StatsBody;
  };

  it('refuses a request without an API key, or with a token that is not one', async () => {
    for (const key of [null, 'not-a-configured-key']) {
      const res = await api(gw.url, 'GET', '/v1/stats', key);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'unauthorized', message: expect.any(String) });
    }
  });

  it('counts ingest, deliveries per transport, clients and lag as events flow, the same numbers as /metrics', async () => {
    rx.behaviour = () => ({ status: 200, body: 'ok' });
    const subject = 'events.svc.stats.tick';
    await createEndpoint(gw.url, rx, { patterns: [subject] });
    const before = await stats();
    expect(before.clients).toEqual({ socketio: 0, sse: 0 });

    let socket: Socket | undefined;
    let sse: SseReader | undefined;
    try {
      socket = await connectSocket(gw.url, PUB_KEY);
      const collector = new SocketCollector(socket);
      const sub = await mustSubscribe(socket, { subjects: [subject] });
      sse = await SseReader.open(streamUrl(gw.url, { subject }), { token: PUB_KEY });
      expect(sse.status).toBe(200);
      await waitFor(() => sse!.frames.some((f) => f.event === 'ready'), { message: 'the SSE subscription ready' });
      await waitFor(async () => (await stats()).clients.sse === 1, { message: 'the SSE client counted' });
      expect((await stats()).clients).toEqual({ socketio: 1, sse: 1 });

      const n = 20;
      await publish(
        gw.url,
        subject,
        Array.from({ length: n }, (_, i) => `stats-${i}`),
      );
      await collector.waitForEvents(sub.id, n);
      const sseEvents = () => sse!.frames.filter((f) => f.event === undefined && f.data !== undefined).length;
      await waitFor(() => sseEvents() >= n && rx.received.length >= n, { message: 'SSE and webhook deliveries' });
      // The webhook's attempt is recorded after the receiver answered.
      await waitFor(async () => (await stats()).deliveries.webhooks - before.deliveries.webhooks === n, {
        message: 'webhook deliveries counted',
      });

      const after = await stats();
      expect(after.atMs).toBeGreaterThan(before.atMs);
      expect(after.deliveries.socketio - before.deliveries.socketio).toBe(n);
      expect(after.deliveries.sse - before.deliveries.sse).toBe(n);
      const accepted = (s: StatsBody) =>
        s.ingest.find((i) => i.source === 'v1' && i.outcome === 'accepted')?.total ?? 0;
      expect(accepted(after) - accepted(before)).toBe(n);
      expect(after.lag.count - before.lag.count).toBe(n);
      expect(after.lag.sumSeconds).toBeGreaterThanOrEqual(before.lag.sumSeconds);
      const counts = after.lag.buckets.map((b) => b.count);
      expect(counts).toEqual([...counts].sort((a, b) => a - b)); // cumulative
      expect(counts[counts.length - 1]).toBeLessThanOrEqual(after.lag.count);
      expect(after.replays).toEqual({ running: 0, waiting: 0 });

      // Nothing moves now: /metrics and /v1/stats read the same metrics.
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      const now = await stats();
      expect(now.deliveries.socketio).toBe(sample(text, 'hookstream_deliveries_total', 'transport="socketio"'));
      expect(now.deliveries.sse).toBe(sample(text, 'hookstream_deliveries_total', 'transport="sse"'));
      expect(now.clients.sse).toBe(sample(text, 'hookstream_connected_clients', 'transport="sse"'));
      expect(now.clients.socketio).toBe(sample(text, 'hookstream_connected_clients', 'transport="socketio"'));
      expect(accepted(now)).toBe(sample(text, 'hookstream_ingest_total', 'source="v1",outcome="accepted"'));
      expect(now.lag.count).toBe(sample(text, 'hookstream_end_to_end_lag_seconds_count'));
      expect(now.lag.buckets[0]).toEqual({
        le: 0.001,
        count: sample(text, 'hookstream_end_to_end_lag_seconds_bucket', 'le="0.001"'),
      });
      expect(now.replays.running).toBe(sample(text, 'hookstream_replays_running'));
    } finally {
      socket?.close();
      sse?.close();
    }
    await waitFor(async () => (await stats()).clients.socketio + (await stats()).clients.sse === 0, {
      message: 'clients gone',
    });
  });
});
