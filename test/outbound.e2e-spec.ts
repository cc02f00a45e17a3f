/**
 * Outbound webhooks end to end, on both stores: endpoints created through the API receive the stored events as
 * signed POSTs (each verified with the official `standardwebhooks` library by a real node:http receiver), retried on
 * the schedule, in order for fifo endpoints, dead after the last attempt and sent again by redelivery.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { waitFor } from './lib/wait.mjs';
import { describeEachStore } from './support/backends.js';
import { uniqueStreamName } from './support/config.js';
import type { RunningGateway } from './support/gateway.js';
import {
  ADMIN_KEY,
  api,
  createEndpoint,
  OTHER_KEY,
  outboundFile,
  PLAIN_KEY,
  publish,
  Receiver,
  startOutboundGateway,
  SVC_KEY,
} from './support/outbound.js';

jest.setTimeout(60_000);

let counter = 0;
const uid = (p: string) => `${p}_${Date.now().toString(36)}_${++counter}`;

async function attempts(gw: RunningGateway, id: string, key = SVC_KEY): Promise<any[]> {
  const res = await api(gw.url, 'GET', `/v1/endpoints/${id}/attempts?limit=1000`, key);
  expect(res.status).toBe(200);
  return res.body.attempts;
}

async function endpoint(gw: RunningGateway, id: string, key = SVC_KEY): Promise<any> {
  const res = await api(gw.url, 'GET', `/v1/endpoints/${id}`, key);
  expect(res.status).toBe(200);
  return res.body;
}

describeEachStore('outbound webhooks', (backend) => {
  let gw: RunningGateway;
  const receivers: Receiver[] = [];
  const receiver = async () => {
    const r = await Receiver.start();
    receivers.push(r);
    return r;
  };

  beforeAll(async () => {
    await backend.setup();
    gw = await startOutboundGateway(
      backend.configFor(
        outboundFile(uniqueStreamName('OUT'), {
          retrySchedule: ['400ms', '800ms', '1200ms', '1600ms', '2000ms'],
          jitter: 0.2,
          timeout: '1s',
        }),
      ),
    );
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await gw?.close();
    await backend.teardown();
  });

  it('delivers each event published after the create exactly once on 2xx, signed, webhook-id = envelope id', async () => {
    const rx = await receiver();
    const subject = `events.svc.${uid('once')}.created`;
    const before = await publish(gw.url, subject, [uid('early')]);
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject], headers: { 'X-Tenant': 't1' } });
    expect(ep.body).toMatchObject({
      status: 'active',
      ordering: 'unordered',
      maxInFlight: 16,
      managed: 'api',
      owner: 'svc',
    });
    expect(ep.secret).toMatch(/^whsec_/);
    const ids = Array.from({ length: 20 }, () => uid('evt'));
    const stored = await publish(gw.url, subject, ids);
    await waitFor(() => rx.received.length >= 20, { message: '20 deliveries' });
    await waitFor(async () => (await endpoint(gw, ep.id)).state.pending === 0, { message: 'nothing pending' });
    expect(rx.received.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(rx.received.every((r) => r.verified)).toBe(true);
    expect(rx.received.map((r) => r.id)).not.toContain(before[0].id);
    const byId = new Map(stored.map((s) => [s.id, s]));
    for (const r of rx.received) {
      const env = JSON.parse(r.body);
      expect(env.id).toBe(r.id);
      expect(r.cursor).toBe(byId.get(r.id)!.cursor);
      expect(r.attempt).toBe(1);
      expect(r.headers['x-tenant']).toBe('t1');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['user-agent']).toMatch(/^Hookstream\//);
    }
    const log = await attempts(gw, ep.id);
    expect(log).toHaveLength(20);
    expect(log.every((a) => a.status === 200 && a.error === null && a.attempt === 1)).toBe(true);
    // Health is written at most once a second per endpoint, with a trailing write for the last outcome.
    await waitFor(async () => (await endpoint(gw, ep.id)).state.lastSuccessAt !== null, { message: 'lastSuccessAt' });
    expect((await endpoint(gw, ep.id)).state).toMatchObject({ pending: 0, dead: 0, failingSince: null });
  });

  it('keeps retrying a receiver that is down, on schedule, and delivers everything once it is up', async () => {
    const rx = await receiver();
    const subject = `events.svc.${uid('down')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    await rx.down();
    const ids = Array.from({ length: 5 }, () => uid('evt'));
    await publish(gw.url, subject, ids);
    // At least three refused attempts per event before the receiver comes back.
    await waitFor(async () => (await attempts(gw, ep.id)).filter((a) => a.attempt === 3).length === 5, {
      timeoutMs: 20_000,
      message: 'third attempts',
    });
    await rx.listen();
    await waitFor(() => new Set(rx.ids()).size === 5, { timeoutMs: 20_000, message: 'all five delivered' });
    await waitFor(async () => (await endpoint(gw, ep.id)).state.pending === 0, { message: 'nothing pending' });
    expect(rx.ids().sort()).toEqual([...ids].sort()); // none twice
    expect(rx.received.every((r) => r.verified && r.attempt >= 4)).toBe(true);
    const log = await attempts(gw, ep.id);
    const schedule = [400, 800, 1200, 1600, 2000];
    for (const id of ids) {
      const mine = log.filter((a) => a.eventId === id).sort((a, b) => a.attempt - b.attempt);
      expect(mine.map((a) => a.attempt)).toEqual(mine.map((_, i) => i + 1));
      expect(mine.slice(0, -1).every((a) => a.error === 'connection_failed' && a.status === null)).toBe(true);
      expect(mine.at(-1)).toMatchObject({ status: 200, error: null });
      for (let i = 1; i < mine.length; i++) {
        const gap = Date.parse(mine[i].at) - Date.parse(mine[i - 1].at);
        // Never before the jittered delay (20 ms for clock rounding); never long after it.
        expect(gap).toBeGreaterThanOrEqual(schedule[i - 1] * 0.8 - 20);
        expect(gap).toBeLessThanOrEqual(schedule[i - 1] * 1.2 + 3_000);
      }
    }
  });

  it('fifo: strictly in stream order, one request in flight, a failing event holds back the next', async () => {
    const rx = await receiver();
    const subject = `events.svc.${uid('fifo')}.x`;
    const ids = Array.from({ length: 6 }, () => uid('evt'));
    let failures = 0;
    rx.behaviour = (r) => (r.id === ids[2] && failures++ < 2 ? { status: 500, body: 'not yet' } : { status: 200 });
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject], ordering: 'fifo' });
    expect(ep.body).toMatchObject({ ordering: 'fifo', maxInFlight: 1 });
    await publish(gw.url, subject, ids);
    await waitFor(() => rx.received.filter((r) => r.id === ids[5]).length === 1, {
      timeoutMs: 20_000,
      message: 'last event',
    });
    expect(rx.maxConcurrent).toBe(1);
    // Every request in order: ids[2] three times (two 500s, then 200), nothing after it before its success.
    expect(rx.ids()).toEqual([ids[0], ids[1], ids[2], ids[2], ids[2], ids[3], ids[4], ids[5]]);
    expect(rx.received.every((r) => r.verified)).toBe(true);
  });

  it('dead after the last attempt; redelivery by ids and by range sends the same webhook-ids', async () => {
    const rx = await receiver();
    rx.behaviour = () => ({ status: 500, body: 'broken' });
    const subject = `events.svc.${uid('dead')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    const ids = [uid('evt'), uid('evt'), uid('evt')];
    const stored = await publish(gw.url, subject, ids);
    const deadList = async () =>
      (await api(gw.url, 'GET', `/v1/endpoints/${ep.id}/dead`, SVC_KEY)).body.events as any[];
    await waitFor(async () => (await deadList()).length === 3, { timeoutMs: 30_000, message: 'three dead events' });
    const dead = await deadList();
    expect(dead.map((d) => d.eventId)).toEqual(ids);
    expect(dead[0]).toMatchObject({
      seq: stored[0].seq,
      cursor: stored[0].cursor,
      attempts: 6,
      lastStatus: 500,
      lastError: null,
    });
    expect((await endpoint(gw, ep.id)).state).toMatchObject({ dead: 3, pending: 0 });
    expect(rx.received.filter((r) => r.id === ids[0])).toHaveLength(6);

    rx.behaviour = () => ({ status: 204 });
    const before = rx.received.length;
    const byIds = await api(gw.url, 'POST', `/v1/endpoints/${ep.id}/redeliver`, SVC_KEY, { eventIds: [ids[1]] });
    expect(byIds).toMatchObject({ status: 202, body: { queued: 1 } });
    await waitFor(() => rx.received.length === before + 1, { message: 'the redelivered event' });
    expect(rx.received.at(-1)).toMatchObject({ id: ids[1], verified: true, attempt: 1 });
    await waitFor(async () => (await deadList()).length === 2, { message: 'no longer dead' });

    const byRange = await api(gw.url, 'POST', `/v1/endpoints/${ep.id}/redeliver`, SVC_KEY, {
      from: stored[0].cursor,
      until: stored[2].cursor,
    });
    expect(byRange).toMatchObject({ status: 202, body: { queued: 3 } });
    await waitFor(() => rx.received.length === before + 4, { message: 'the range' });
    expect(
      rx.received
        .slice(before + 1)
        .map((r) => r.id)
        .sort(),
    ).toEqual([...ids].sort());
    expect(rx.received.slice(before).every((r) => r.verified)).toBe(true);
  });

  it('410 Gone disables the endpoint and drops nothing: set active again, the event goes out', async () => {
    const rx = await receiver();
    rx.behaviour = () => ({ status: 410 });
    const subject = `events.svc.${uid('gone')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    const [evt] = await publish(gw.url, subject, [uid('evt')]);
    await waitFor(async () => (await endpoint(gw, ep.id)).status === 'disabled', { message: 'disabled' });
    expect(await endpoint(gw, ep.id)).toMatchObject({ status: 'disabled', disabledReason: 'gone' });
    rx.behaviour = () => ({ status: 200 });
    const patched = await api(gw.url, 'PATCH', `/v1/endpoints/${ep.id}`, SVC_KEY, { status: 'active' });
    expect(patched).toMatchObject({ status: 200, body: { status: 'active', disabledReason: null } });
    await waitFor(() => rx.received.some((r) => r.id === evt.id && rx.received.indexOf(r) > 0), {
      message: 'the event after reactivation',
    });
    expect(rx.received.filter((r) => r.id === evt.id).every((r) => r.verified)).toBe(true);
  });

  it('honours Retry-After on 429', async () => {
    const rx = await receiver();
    let first = true;
    rx.behaviour = () => {
      if (!first) return { status: 200 };
      first = false;
      return { status: 429, headers: { 'retry-after': '2' } };
    };
    const subject = `events.svc.${uid('429')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    await publish(gw.url, subject, [uid('evt')]);
    await waitFor(() => rx.received.length === 2, { message: 'the second attempt' });
    // The schedule says 400 ms ± 20 %; the receiver asked for 2 s.
    expect(rx.received[1].at - rx.received[0].at).toBeGreaterThanOrEqual(1_950);
    // The attempt is logged once its answer is in, just after the receiver saw the request.
    await waitFor(async () => (await attempts(gw, ep.id)).length === 2, { message: 'both attempts logged' });
    const log = await attempts(gw, ep.id);
    expect(log.map((a) => a.status)).toEqual([200, 429]);
  });

  it('times out a hanging receiver and tries again', async () => {
    const rx = await receiver();
    let hung = false;
    rx.behaviour = () => {
      if (hung) return { status: 200 };
      hung = true;
      return 'hang';
    };
    const subject = `events.svc.${uid('hang')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    await publish(gw.url, subject, [uid('evt')]);
    await waitFor(async () => (await attempts(gw, ep.id)).some((a) => a.status === 200), { message: 'the retry' });
    const log = await attempts(gw, ep.id);
    expect(log.at(-1)).toMatchObject({ attempt: 1, status: null, error: 'timeout' });
    expect(log[0]).toMatchObject({ attempt: 2, status: 200 });
  });

  it('does not follow a 3xx: a failed attempt with error `redirect`', async () => {
    const rx = await receiver();
    rx.behaviour = (r) =>
      r.path === '/hook' ? { status: 307, headers: { location: `${rx.url}/elsewhere` } } : { status: 200 };
    const subject = `events.svc.${uid('redir')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    await publish(gw.url, subject, [uid('evt')]);
    await waitFor(async () => (await attempts(gw, ep.id)).length >= 2, { message: 'two attempts' });
    const log = await attempts(gw, ep.id);
    expect(log.every((a) => a.status === 307 && a.error === 'redirect')).toBe(true);
    expect(rx.received.some((r) => r.path === '/elsewhere')).toBe(false);
    await api(gw.url, 'DELETE', `/v1/endpoints/${ep.id}`, SVC_KEY);
  });

  it('a deleted endpoint receives nothing more', async () => {
    const rx = await receiver();
    const subject = `events.svc.${uid('del')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    const del = await api(gw.url, 'DELETE', `/v1/endpoints/${ep.id}`, SVC_KEY);
    expect(del.status).toBe(204);
    expect((await api(gw.url, 'GET', `/v1/endpoints/${ep.id}`, SVC_KEY)).status).toBe(404);
    // A second endpoint on the same subject shows when the event has been processed.
    const rx2 = await receiver();
    await createEndpoint(gw.url, rx2, { patterns: [subject] });
    await publish(gw.url, subject, [uid('evt')]);
    await waitFor(() => rx2.received.length === 1, { message: 'the witness endpoint' });
    expect(rx.received).toHaveLength(0);
  });

  describe('the API refuses bad input with the documented codes, creating nothing', () => {
    let rx: Receiver;
    let mine: string;
    beforeAll(async () => {
      rx = await receiver();
      mine = (await createEndpoint(gw.url, rx, { patterns: ['events.svc.api.>'] })).id;
    });
    const list = async (key = ADMIN_KEY) => (await api(gw.url, 'GET', '/v1/endpoints', key)).body.endpoints as any[];

    it.each([
      ['no body at all', undefined, 'invalid_request'],
      ['an array', [], 'invalid_request'],
      ['a missing url', { patterns: ['events.svc.>'] }, 'invalid_request'],
      ['a url of the wrong type', { url: 5, patterns: ['events.svc.>'] }, 'invalid_request'],
      ['missing patterns', { url: 'http://127.0.0.1:9/x' }, 'invalid_request'],
      ['patterns of the wrong type', { url: 'http://127.0.0.1:9/x', patterns: 'events.svc.>' }, 'invalid_request'],
      [
        'an unknown field',
        { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'], colour: 'red' },
        'invalid_request',
      ],
      ['an ftp url', { url: 'ftp://127.0.0.1/x', patterns: ['events.svc.>'] }, 'invalid_url'],
      ['a url with user info', { url: 'http://u:p@127.0.0.1/x', patterns: ['events.svc.>'] }, 'invalid_url'],
      [
        'a url over 2048 characters',
        { url: `http://127.0.0.1/${'a'.repeat(2050)}`, patterns: ['events.svc.>'] },
        'invalid_url',
      ],
      ['an invalid pattern', { url: 'http://127.0.0.1:9/x', patterns: ['events.>.svc'] }, 'invalid_subject'],
      ['an empty pattern list', { url: 'http://127.0.0.1:9/x', patterns: [] }, 'invalid_subject'],
      ['a bad from', { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'], from: 'yesterday' }, 'invalid_cursor'],
      [
        'a cursor of another stream',
        { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'], from: 'zz9_1' },
        'invalid_cursor',
      ],
      [
        'a bad secret',
        { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'], secret: 'whsec_short' },
        'invalid_request',
      ],
      [
        'a reserved header',
        { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'], headers: { 'webhook-id': 'x' } },
        'invalid_request',
      ],
      [
        'fifo with maxInFlight 4',
        { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'], ordering: 'fifo', maxInFlight: 4 },
        'invalid_request',
      ],
      ['maxInFlight 0', { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'], maxInFlight: 0 }, 'invalid_request'],
      [
        'a negative rateLimit',
        { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'], rateLimit: -1 },
        'invalid_request',
      ],
      ['a pattern outside the grant', { url: 'http://127.0.0.1:9/x', patterns: ['events.>'] }, 'forbidden'],
      [
        'a pattern outside the grant, among good ones',
        { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.a', 'events.other.>'] },
        'forbidden',
      ],
    ])('POST with %s', async (_name, body, code) => {
      const before = (await list()).length;
      const res = await api(gw.url, 'POST', '/v1/endpoints', SVC_KEY, body, body === undefined ? '' : undefined);
      expect(res.body).toMatchObject({ error: code });
      expect(typeof res.body.message).toBe('string');
      expect(res.status).toBe(
        { invalid_request: 400, invalid_url: 400, invalid_subject: 400, invalid_cursor: 400, forbidden: 403 }[code],
      );
      expect((await list()).length).toBe(before);
    });

    it('POST with a body that is not JSON', async () => {
      const res = await api(gw.url, 'POST', '/v1/endpoints', SVC_KEY, undefined, '{"url":');
      expect(res).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    });

    it('401 without or with an unknown key; 403 for a key without endpoints or admin, on every call', async () => {
      const calls: [string, string, unknown?][] = [
        ['POST', '/v1/endpoints', { url: 'http://127.0.0.1:9/x', patterns: ['events.svc.>'] }],
        ['GET', '/v1/endpoints'],
        ['GET', `/v1/endpoints/${mine}`],
        ['GET', `/v1/endpoints/${mine}/secret`],
        ['PATCH', `/v1/endpoints/${mine}`, { description: 'x' }],
        ['DELETE', `/v1/endpoints/${mine}`],
        ['POST', `/v1/endpoints/${mine}/rotate-secret`, {}],
        ['GET', `/v1/endpoints/${mine}/attempts`],
        ['GET', `/v1/endpoints/${mine}/dead`],
        ['POST', `/v1/endpoints/${mine}/redeliver`, { eventIds: ['x'] }],
      ];
      for (const [method, path, body] of calls) {
        expect(await api(gw.url, method, path, null, body)).toMatchObject({
          status: 401,
          body: { error: 'unauthorized' },
        });
        expect(await api(gw.url, method, path, 'not-a-key-at-all-0000', body)).toMatchObject({ status: 401 });
        expect(await api(gw.url, method, path, PLAIN_KEY, body)).toMatchObject({
          status: 403,
          body: { error: 'forbidden' },
        });
        // Another owner does not see it at all.
        if (path !== '/v1/endpoints') {
          expect(await api(gw.url, method, path, OTHER_KEY, body)).toMatchObject({
            status: 404,
            body: { error: 'not_found' },
          });
        }
      }
      expect((await endpoint(gw, mine)).description).toBe('');
    });

    it('404 for an unknown id on every per-endpoint call', async () => {
      for (const [method, suffix, body] of [
        ['GET', ''],
        ['GET', '/secret'],
        ['PATCH', '', { description: 'x' }],
        ['DELETE', ''],
        ['POST', '/rotate-secret', {}],
        ['GET', '/attempts'],
        ['GET', '/dead'],
        ['POST', '/redeliver', { eventIds: ['x'] }],
      ] as [string, string, unknown?][]) {
        expect(await api(gw.url, method, `/v1/endpoints/ep_nope${suffix}`, SVC_KEY, body)).toMatchObject({
          status: 404,
          body: { error: 'not_found' },
        });
      }
    });

    it('PATCH: the same checks as create, containment again, nothing changed on refusal', async () => {
      for (const [body, code] of [
        [{ patterns: ['events.>'] }, 'forbidden'],
        [{ patterns: ['events.svc.>.x'] }, 'invalid_subject'],
        [{ url: 'gopher://x' }, 'invalid_url'],
        [{ status: 'paused' }, 'invalid_request'],
        [{ secret: 'whsec_x' }, 'invalid_request'],
        [{ from: 'earliest' }, 'invalid_request'],
        [[1], 'invalid_request'],
      ] as [unknown, string][]) {
        expect((await api(gw.url, 'PATCH', `/v1/endpoints/${mine}`, SVC_KEY, body)).body).toMatchObject({
          error: code,
        });
      }
      expect(await endpoint(gw, mine)).toMatchObject({ patterns: ['events.svc.api.>'], status: 'active' });
      const ok = await api(gw.url, 'PATCH', `/v1/endpoints/${mine}`, SVC_KEY, {
        description: 'd',
        patterns: ['events.svc.api2.>'],
      });
      expect(ok).toMatchObject({ status: 200, body: { description: 'd', patterns: ['events.svc.api2.>'] } });
      // The endpoint's queue follows the new patterns (on JetStream: the consumer's filter is updated).
      const [evt] = await publish(gw.url, 'events.svc.api2.x', [uid('patched')]);
      await waitFor(() => rx.received.some((r) => r.id === evt.id && r.verified), {
        message: 'delivery on the new pattern',
      });
    });

    it('attempts, dead and redeliver check their parameters', async () => {
      for (const q of ['limit=0', 'limit=abc', 'limit=100000']) {
        expect((await api(gw.url, 'GET', `/v1/endpoints/${mine}/attempts?${q}`, SVC_KEY)).body).toMatchObject({
          error: 'invalid_request',
        });
        expect((await api(gw.url, 'GET', `/v1/endpoints/${mine}/dead?${q}`, SVC_KEY)).body).toMatchObject({
          error: 'invalid_request',
        });
      }
      for (const [body, status, code] of [
        [{}, 400, 'invalid_request'],
        [{ eventIds: [] }, 400, 'invalid_request'],
        [{ eventIds: 'x' }, 400, 'invalid_request'],
        [{ eventIds: ['x'], from: 'zz_1' }, 400, 'invalid_request'],
        [{ from: 'not-a-cursor' }, 400, 'invalid_cursor'],
        [{ until: '2026-13-01T00:00:00Z' }, 400, 'invalid_cursor'],
        [{ eventIds: ['never-dead'] }, 404, 'not_found'],
      ] as [unknown, number, string][]) {
        expect(await api(gw.url, 'POST', `/v1/endpoints/${mine}/redeliver`, SVC_KEY, body)).toMatchObject({
          status,
          body: { error: code },
        });
      }
    });

    it('secrets: readable by the owner and admin, rotation signs with both during the grace', async () => {
      const rxr = await receiver();
      const subject = `events.svc.${uid('rot')}.x`;
      const ep = await createEndpoint(gw.url, rxr, { patterns: [subject] });
      expect((await api(gw.url, 'GET', `/v1/endpoints/${ep.id}/secret`, SVC_KEY)).body).toEqual({ secret: ep.secret });
      expect((await api(gw.url, 'GET', `/v1/endpoints/${ep.id}/secret`, ADMIN_KEY)).body).toEqual({
        secret: ep.secret,
      });
      expect((await api(gw.url, 'GET', `/v1/endpoints/${ep.id}`, SVC_KEY)).body.secret).toBeUndefined();
      const rot = await api(gw.url, 'POST', `/v1/endpoints/${ep.id}/rotate-secret`, SVC_KEY, {});
      expect(rot.status).toBe(200);
      expect(rot.body.secret).not.toBe(ep.secret);
      // A receiver still on the old secret verifies during the grace.
      await publish(gw.url, subject, [uid('evt')]);
      await waitFor(() => rxr.received.length === 1, { message: 'a delivery after rotation' });
      expect(rxr.received[0].verified).toBe(true);
      expect(String(rxr.received[0].headers['webhook-signature']).split(' ')).toHaveLength(2);
    });

    it('list shows a key its own endpoints only; admin sees all', async () => {
      const own = (await list(SVC_KEY)).map((e) => e.owner);
      expect(new Set(own)).toEqual(new Set(['svc']));
      expect((await list(OTHER_KEY)).length).toBe(0);
      expect((await list(ADMIN_KEY)).some((e) => e.id === mine)).toBe(true);
      expect((await list(SVC_KEY)).every((e) => e.secret === undefined)).toBe(true);
    });
  });
});

describeEachStore('outbound webhooks: SSRF guard', (backend) => {
  let gw: RunningGateway;
  let rx: Receiver;
  // Answers public first and loopback afterwards: a DNS rebinding.
  let rebindCalls = 0;
  const resolver = async (host: string) => {
    if (host === 'public.test') return [{ address: '93.184.216.34', family: 4 as const }];
    if (host === 'private.test') return [{ address: '10.0.0.7', family: 4 as const }];
    if (host === 'rebind.test')
      return [{ address: rebindCalls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 as const }];
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };

  beforeAll(async () => {
    await backend.setup();
    rx = await Receiver.start();
    gw = await startOutboundGateway(
      backend.configFor(
        outboundFile(uniqueStreamName('SSRF'), { allowPrivateNetworks: false, retrySchedule: ['200ms', '200ms'] }),
      ),
      { resolver },
    );
  });
  afterAll(async () => {
    await rx?.close();
    await gw?.close();
    await backend.teardown();
  });

  it.each([
    'http://127.0.0.1/x',
    'http://localhost.:1/x',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://017700000001/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://169.254.169.254/latest/meta-data/',
    'http://10.1.2.3/',
    'http://172.16.5.4/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://0.0.0.0/',
    'http://[fd00::1]/',
    'http://[fe80::1]/',
    'http://224.0.0.1/',
    'http://private.test/',
    'http://nowhere.test/',
  ])('refuses %s at create with invalid_url', async (url) => {
    const res = await api(gw.url, 'POST', '/v1/endpoints', SVC_KEY, { url, patterns: ['events.svc.>'] });
    expect(res).toMatchObject({ status: 400, body: { error: 'invalid_url' } });
  });

  it('accepts a public name, and fails the attempt with blocked_address when it resolves to loopback at send time', async () => {
    const ep = await api(gw.url, 'POST', '/v1/endpoints', SVC_KEY, {
      url: `http://rebind.test:${rx.port}/hook`,
      patterns: ['events.svc.ssrf.>'],
    });
    expect(ep.status).toBe(201);
    await publish(gw.url, 'events.svc.ssrf.x', [uid('evt')]);
    await waitFor(async () => (await attempts(gw, ep.body.id)).length >= 2, { message: 'two attempts' });
    const log = await attempts(gw, ep.body.id);
    expect(log.every((a) => a.error === 'blocked_address' && a.status === null)).toBe(true);
    expect(rx.received).toHaveLength(0);
  });
});

describeEachStore('outbound webhooks: declared endpoints, limits, auto-disable, metrics', (backend) => {
  let gw: RunningGateway;
  let declared: Receiver;
  const receivers: Receiver[] = [];
  const receiver = async () => {
    const r = await Receiver.start();
    receivers.push(r);
    return r;
  };
  const SECRET = 'whsec_' + Buffer.alloc(32, 9).toString('base64');

  beforeAll(async () => {
    await backend.setup();
    declared = await receiver();
    declared.secret = SECRET;
    gw = await startOutboundGateway(
      backend.configFor(
        outboundFile(
          uniqueStreamName('OUTX'),
          {
            retrySchedule: ['300ms', '300ms', '300ms', '300ms', '300ms', '300ms'],
            disableAfter: '1500ms',
            attemptRetention: '2s',
          },
          {
            endpoints: [
              {
                id: 'audit',
                url: `${declared.url}/audit`,
                patterns: ['events.audit.>'],
                secret: SECRET,
                ordering: 'fifo',
              },
            ],
          },
        ),
      ),
    );
  });
  afterAll(async () => {
    for (const r of receivers) await r.close();
    await gw?.close();
    await backend.teardown();
  });

  it('a declared endpoint delivers, is listed as managed "config" to admins, and is read-only (409)', async () => {
    await waitFor(async () => (await api(gw.url, 'GET', '/v1/endpoints/audit', ADMIN_KEY)).status === 200, {
      message: 'the declared endpoint is loaded',
    });
    const ids = [uid('a'), uid('a')];
    await publish(gw.url, 'events.audit.login', ids);
    await waitFor(() => declared.received.length === 2, { message: 'two deliveries' });
    expect(declared.ids()).toEqual(ids);
    expect(declared.received.every((r) => r.verified && r.path === '/audit')).toBe(true);
    const view = (await api(gw.url, 'GET', '/v1/endpoints/audit', ADMIN_KEY)).body;
    expect(view).toMatchObject({ id: 'audit', managed: 'config', owner: null, ordering: 'fifo', status: 'active' });
    for (const [method, path, body] of [
      ['PATCH', '/v1/endpoints/audit', { description: 'x' }],
      ['DELETE', '/v1/endpoints/audit'],
      ['POST', '/v1/endpoints/audit/rotate-secret', {}],
    ] as [string, string, unknown?][]) {
      expect(await api(gw.url, method, path, ADMIN_KEY, body)).toMatchObject({
        status: 409,
        body: { error: 'read_only' },
      });
    }
    // Not visible to a key that did not create it.
    expect((await api(gw.url, 'GET', '/v1/endpoints/audit', SVC_KEY)).status).toBe(404);
    expect((await api(gw.url, 'GET', '/v1/endpoints/audit/secret', ADMIN_KEY)).body).toEqual({ secret: SECRET });
  });

  it('unordered: up to maxInFlight requests at once, never more', async () => {
    const rx = await receiver();
    // Each answer takes 200 ms: twelve events would overlap far beyond three without the cap.
    rx.behaviour = () => ({ status: 200, delayMs: 200 });
    const subject = `events.svc.${uid('mif')}.x`;
    await createEndpoint(gw.url, rx, { patterns: [subject], maxInFlight: 3 });
    await publish(
      gw.url,
      subject,
      Array.from({ length: 12 }, () => uid('e')),
    );
    await waitFor(() => rx.received.length === 12, { message: 'twelve deliveries' });
    expect(rx.maxConcurrent).toBe(3);
  });

  it('rateLimit caps deliveries per second', async () => {
    const rx = await receiver();
    const subject = `events.svc.${uid('rate')}.x`;
    await createEndpoint(gw.url, rx, { patterns: [subject], rateLimit: 5 });
    await publish(
      gw.url,
      subject,
      Array.from({ length: 8 }, () => uid('e')),
    );
    await waitFor(() => rx.received.length === 8, { timeoutMs: 15_000, message: 'eight deliveries' });
    // 5 per second, evenly spaced: 8 requests span at least 7 gaps of 200 ms.
    const span = rx.received[7].at - rx.received[0].at;
    if (span < 7 * 200 - 50) {
      const seen = rx.received.map((r) => ({ id: r.id, at: r.at - rx.received[0].at, attempt: r.attempt }));
      throw new Error(`8 deliveries within ${span} ms: ${JSON.stringify(seen)}`);
    }
    expect(new Set(rx.ids()).size).toBe(8);
  });

  it('disables an endpoint with no 2xx for disableAfter (reason failing), keeping its events', async () => {
    const rx = await receiver();
    rx.behaviour = () => ({ status: 500 });
    const subject = `events.svc.${uid('failing')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    const [evt] = await publish(gw.url, subject, [uid('e')]);
    await waitFor(async () => (await endpoint(gw, ep.id)).status === 'disabled', {
      timeoutMs: 15_000,
      message: 'disabled',
    });
    const view = await endpoint(gw, ep.id);
    expect(view).toMatchObject({ disabledReason: 'failing' });
    expect(view.state.failingSince).not.toBeNull();
    rx.behaviour = () => ({ status: 200 });
    await api(gw.url, 'PATCH', `/v1/endpoints/${ep.id}`, SVC_KEY, { status: 'active' });
    await waitFor(() => rx.received.some((r) => r.id === evt.id && r.verified && rx.received.indexOf(r) > 0), {
      message: 'delivered after reactivation',
    });
    await waitFor(async () => (await endpoint(gw, ep.id)).state.failingSince === null, { message: 'healthy again' });
  });

  it('drops attempt log entries older than attemptRetention', async () => {
    const rx = await receiver();
    const subject = `events.svc.${uid('retain')}.x`;
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    await publish(gw.url, subject, [uid('e')]);
    await waitFor(async () => (await attempts(gw, ep.id)).length === 1, { message: 'one logged attempt' });
    await waitFor(async () => (await attempts(gw, ep.id)).length === 0, {
      timeoutMs: 15_000,
      message: 'the entry expired',
    });
    expect(rx.received).toHaveLength(1);
  });

  it('exposes the outbound metrics', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    expect(text).toMatch(/hookstream_outbound_attempts_total\{endpoint="audit",outcome="delivered"\} 2/);
    expect(text).toMatch(/hookstream_outbound_delivery_latency_seconds_count/);
    expect(text).toMatch(/hookstream_outbound_pending\{endpoint="audit"\} 0/);
    expect(text).toMatch(/hookstream_outbound_dead\{endpoint="audit"\} 0/);
    expect(text).toMatch(/hookstream_outbound_disabled_endpoints \d+/);
  });
});
