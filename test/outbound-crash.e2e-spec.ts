/**
 * Outbound delivery state survives a gateway killed with SIGKILL while deliveries are pending: real `node
 * dist/main.js` processes. JetStream: a second replica on the same NATS takes over at once and, with the first one
 * restarted beside it, each event is attempted by one replica at a time. Embedded: the restarted process on the same
 * data directory continues. Either way nothing is lost and no schedule restarts from the first attempt.
 */
import { afterAll, afterEach, beforeAll, expect, it, jest } from '@jest/globals';
import { waitFor } from './lib/wait.mjs';
import { describeEachStore } from './support/backends.js';
import { uniqueStreamName } from './support/config.js';
import { GatewayProcess } from './support/gateway.js';
import { api, createEndpoint, outboundFile, publish, Receiver, SVC_KEY } from './support/outbound.js';

jest.setTimeout(120_000);

describeEachStore('outbound webhooks across a SIGKILL', (backend) => {
  const procs: GatewayProcess[] = [];
  let rx: Receiver;

  beforeAll(async () => {
    await backend.setup();
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.dispose();
    await rx?.close();
  });
  afterAll(async () => {
    await backend.teardown();
  });

  it('loses nothing, restarts no schedule, and attempts each event on one replica at a time', async () => {
    rx = await Receiver.start();
    // Failing until every event has had two attempts, then healthy.
    let healthy = false;
    rx.behaviour = () => (healthy ? { status: 200 } : { status: 503, body: 'down for maintenance' });
    const file = outboundFile(uniqueStreamName('OUTKILL'), {
      // Long enough that no event goes dead while the gateway is down and coming back.
      retrySchedule: Array.from({ length: 30 }, () => '700ms'),
      jitter: 0.1,
      timeout: '1s',
    });
    const env = backend.processEnv();
    const a = await GatewayProcess.start(file, env);
    procs.push(a);
    const subject = 'events.svc.crash.x';
    // maxInFlight above the event count: an event waiting for its retry holds its slot.
    const ep = await createEndpoint(a.url, rx, { patterns: [subject], maxInFlight: 16 });
    const ids = Array.from({ length: 10 }, (_, i) => `crash-${i}-${Date.now().toString(36)}`);
    await publish(a.url, subject, ids);
    const attemptsOf = (id: string) => rx.received.filter((r) => r.id === id).map((r) => r.attempt);
    await waitFor(() => ids.every((id) => attemptsOf(id).length >= 2), {
      timeoutMs: 30_000,
      message: 'two attempts each',
    }).catch((err: Error) => {
      throw new Error(
        `${err.message}; received ${JSON.stringify(rx.received.slice(0, 30).map((r) => [r.id, r.attempt, r.status]))}`,
      );
    });

    await a.stop('SIGKILL');
    const killedAt = rx.received.length;
    let b: GatewayProcess;
    if (backend.kind === 'jetstream') {
      // A second replica on the same NATS takes over, and the first comes back beside it.
      b = await GatewayProcess.start(file, env);
      procs.push(b);
      await a.restart();
    } else {
      // One process owns a data directory: the same one comes back on it.
      await a.restart();
      b = a;
    }
    await waitFor(() => rx.received.length > killedAt, { timeoutMs: 30_000, message: 'attempts after the kill' });
    healthy = true;
    const delivered = (id: string) => rx.received.some((r) => r.id === id && r.status === 200);
    await waitFor(() => ids.every(delivered), {
      timeoutMs: 30_000,
      message: `every event delivered (seen: ${JSON.stringify(ids.map((id) => rx.received.filter((r) => r.id === id).map((r) => [r.attempt, r.status])))})`,
    }).catch((err: Error) => {
      throw new Error(
        `${err.message}; seen: ${JSON.stringify(ids.map((id) => rx.received.filter((r) => r.id === id).map((r) => [r.attempt, r.status])))}`,
      );
    });
    await waitFor(async () => (await api(b.url, 'GET', `/v1/endpoints/${ep.id}`, SVC_KEY)).body.state?.pending === 0, {
      timeoutMs: 30_000,
      message: 'nothing pending',
    });

    expect(rx.received.every((r) => r.verified)).toBe(true);
    for (const id of ids) {
      const mine = rx.received.filter((r) => r.id === id);
      const seen = mine.map((r) => r.attempt);
      // The count goes on across the kill and the replicas: it starts at 1 and only grows (an attempt cut off by
      // the kill before it reached the receiver leaves a gap).
      expect(seen[0]).toBe(1);
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
      // One replica at a time: no request for this event began before the previous one was answered.
      for (let i = 1; i < mine.length; i++) expect(mine[i].at).toBeGreaterThanOrEqual(mine[i - 1].answeredAt);
      // Delivered exactly once, by the last request.
      expect(mine.filter((r) => r.status === 200)).toHaveLength(1);
      expect(mine.at(-1)!.status).toBe(200);
      // The schedule went on after the kill: attempts made after it are not numbered from 1 again.
      expect(mine.filter((r) => rx.received.indexOf(r) >= killedAt).every((r) => r.attempt >= 3)).toBe(true);
    }
  });
});
