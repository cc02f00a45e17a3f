/**
 * What outlives a disable, on both stores: a declared endpoint disabled by a 410 stays disabled across a gateway
 * restart until an admin sets it active through the API; events that expire while an endpoint is disabled — past
 * the retry window, or removed by retention after an attempt — are recorded dead with `lastError: "expired"`
 * instead of being sent late or silently lost, and can be redelivered while the stream still holds them.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { AppConfig } from '../src/config/app-config.js';
import { waitFor } from './lib/wait.mjs';
import { describeEachStore } from './support/backends.js';
import { uniqueStreamName } from './support/config.js';
import type { RunningGateway } from './support/gateway.js';
import {
  ADMIN_KEY,
  api,
  createEndpoint,
  outboundFile,
  publish,
  Receiver,
  startOutboundGateway,
  SVC_KEY,
} from './support/outbound.js';

jest.setTimeout(60_000);

let counter = 0;
const uid = (p: string) => `${p}_${Date.now().toString(36)}_${++counter}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeEachStore('outbound webhooks: what outlives a disable', (backend) => {
  // One stream for every gateway here: on one nats-server, streams may not share subjects.
  const stream = uniqueStreamName('OUTDIS');
  const receivers: Receiver[] = [];
  const gateways: RunningGateway[] = [];
  const receiver = async () => {
    const r = await Receiver.start();
    receivers.push(r);
    return r;
  };
  /** A gateway whose store answers (the endpoint API says 503 until then). */
  const gateway = async (config: AppConfig) => {
    const gw = await startOutboundGateway(config);
    gateways.push(gw);
    await waitFor(async () => (await api(gw.url, 'GET', '/v1/endpoints', ADMIN_KEY)).status === 200, {
      message: 'the store answers',
    });
    return gw;
  };

  beforeAll(async () => {
    await backend.setup();
  });
  afterEach(async () => {
    for (const gw of gateways.splice(0)) await gw.close();
    for (const r of receivers.splice(0)) await r.close();
  });
  afterAll(async () => {
    await backend.teardown();
  });

  it('a declared endpoint disabled by a 410 stays disabled across a restart until an admin sets it active', async () => {
    const rx = await receiver();
    rx.secret = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    rx.behaviour = () => ({ status: 410 });
    // A long schedule: nothing here may expire by age.
    const file = outboundFile(
      stream,
      { retrySchedule: ['1m'], jitter: 0 },
      {
        endpoints: [{ id: 'audit', url: `${rx.url}/audit`, patterns: ['events.audit.>'], secret: rx.secret }],
      },
    );
    const first = backend.configFor(file);
    let gw = await gateway(first);
    const view = async () => (await api(gw.url, 'GET', '/v1/endpoints/audit', ADMIN_KEY)).body;
    await waitFor(async () => (await api(gw.url, 'GET', '/v1/endpoints/audit', ADMIN_KEY)).status === 200, {
      message: 'the declared endpoint is loaded',
    });
    const [e1] = await publish(gw.url, 'events.audit.login', [uid('e')]);
    await waitFor(async () => (await view()).status === 'disabled', { message: 'disabled by the 410' });
    expect(await view()).toMatchObject({ disabledReason: 'gone' });

    await gw.close();
    gw = await gateway(backend.configFor(file, first));
    await waitFor(async () => (await api(gw.url, 'GET', '/v1/endpoints/audit', ADMIN_KEY)).status === 200, {
      message: 'the declared endpoint is loaded again',
    });
    expect(await view()).toMatchObject({ status: 'disabled', disabledReason: 'gone' });
    const [e2] = await publish(gw.url, 'events.audit.login', [uid('e')]);
    await sleep(1_500);
    expect(rx.received.map((r) => r.id)).toEqual([e1.id]);

    // Only the status may change through the API; the rest stays the file's.
    expect(
      await api(gw.url, 'PATCH', '/v1/endpoints/audit', ADMIN_KEY, { status: 'active', description: 'x' }),
    ).toMatchObject({ status: 409, body: { error: 'read_only' } });
    rx.behaviour = () => ({ status: 200 });
    const res = await api(gw.url, 'PATCH', '/v1/endpoints/audit', ADMIN_KEY, { status: 'active' });
    expect(res).toMatchObject({ status: 200, body: { status: 'active', disabledReason: null, managed: 'config' } });
    await waitFor(() => [e1.id, e2.id].every((id) => rx.received.some((r) => r.id === id && r.status === 200)), {
      message: 'both events delivered after the re-enable',
    });
    expect(rx.received.every((r) => r.verified)).toBe(true);

    // Disabled through the API, it stays so across a restart too.
    expect((await api(gw.url, 'PATCH', '/v1/endpoints/audit', ADMIN_KEY, { status: 'disabled' })).body).toMatchObject({
      status: 'disabled',
      disabledReason: 'manual',
    });
    await gw.close();
    gw = await gateway(backend.configFor(file, first));
    await waitFor(async () => (await api(gw.url, 'GET', '/v1/endpoints/audit', ADMIN_KEY)).status === 200, {
      message: 'loaded a third time',
    });
    expect(await view()).toMatchObject({ status: 'disabled', disabledReason: 'manual' });
  });

  describe('events that expire while an endpoint is disabled', () => {
    // The retry window: 1 s + 1 s, no jitter.
    const delivery = { retrySchedule: ['1s', '1s'], jitter: 0 };

    it('past the retry window: dead as `expired`, not sent; newer events go out; redelivery sends it', async () => {
      const rx = await receiver();
      const gw = await gateway(backend.configFor(outboundFile(stream, delivery)));
      const subject = `events.svc.${uid('exp')}.x`;
      const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
      const [e0] = await publish(gw.url, subject, [uid('e')]);
      await waitFor(() => rx.received.length === 1, { message: 'first delivery' });
      expect((await api(gw.url, 'PATCH', `/v1/endpoints/${ep.id}`, SVC_KEY, { status: 'disabled' })).status).toBe(200);
      const [old] = await publish(gw.url, subject, [uid('old')]);
      await sleep(2_500); // past the window
      const [fresh] = await publish(gw.url, subject, [uid('fresh')]);
      expect((await api(gw.url, 'PATCH', `/v1/endpoints/${ep.id}`, SVC_KEY, { status: 'active' })).status).toBe(200);
      await waitFor(() => rx.received.some((r) => r.id === fresh.id), { message: 'the fresh event delivered' });
      const dead = async () => (await api(gw.url, 'GET', `/v1/endpoints/${ep.id}/dead`, SVC_KEY)).body.events;
      await waitFor(async () => (await dead()).length === 1, { message: 'one dead letter' });
      expect(await dead()).toEqual([
        expect.objectContaining({ eventId: old.id, seq: old.seq, cursor: old.cursor, lastError: 'expired' }),
      ]);
      expect(rx.ids()).toEqual([e0.id, fresh.id]);

      const re = await api(gw.url, 'POST', `/v1/endpoints/${ep.id}/redeliver`, SVC_KEY, { eventIds: [old.id] });
      expect(re).toMatchObject({ status: 202, body: { queued: 1 } });
      await waitFor(() => rx.received.some((r) => r.id === old.id && r.verified), { message: 'redelivered' });
      expect(await dead()).toEqual([]);
    });

    it('removed by retention after an attempt: dead as `expired` once the endpoint is set active', async () => {
      const rx = await receiver();
      rx.behaviour = () => ({ status: 500 });
      const gw = await gateway(backend.configFor(outboundFile(stream, delivery)));
      const subject = `events.svc.${uid('ret')}.x`;
      const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
      const [lost] = await publish(gw.url, subject, [uid('lost')]);
      await waitFor(() => rx.received.length >= 1, { message: 'one failed attempt' });
      expect((await api(gw.url, 'PATCH', `/v1/endpoints/${ep.id}`, SVC_KEY, { status: 'disabled' })).status).toBe(200);
      const attempted = rx.received.length;
      await backend.purge(gw, stream);
      rx.behaviour = () => ({ status: 200 });
      expect((await api(gw.url, 'PATCH', `/v1/endpoints/${ep.id}`, SVC_KEY, { status: 'active' })).status).toBe(200);
      const dead = (await api(gw.url, 'GET', `/v1/endpoints/${ep.id}/dead`, SVC_KEY)).body.events;
      expect(dead).toEqual([
        expect.objectContaining({ eventId: lost.id, seq: lost.seq, lastError: 'expired', lastStatus: 500 }),
      ]);
      // No longer stored: it cannot be sent again.
      const re = await api(gw.url, 'POST', `/v1/endpoints/${ep.id}/redeliver`, SVC_KEY, { eventIds: [lost.id] });
      expect(re).toMatchObject({ status: 404, body: { error: 'not_found' } });
      const [after] = await publish(gw.url, subject, [uid('after')]);
      await waitFor(() => rx.received.some((r) => r.id === after.id), { message: 'a new event delivered' });
      expect(rx.received.slice(attempted).map((r) => r.id)).toEqual([after.id]);
    });
  });
});
