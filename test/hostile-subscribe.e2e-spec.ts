/**
 * Issue "Reliability", part 2 (subscribers): hostile Socket.IO and SSE clients. Each gets its documented answer
 * (docs/protocol.md: ack codes, SSE statuses, closing reasons), the process stays up (`/healthz` after every burst)
 * and, for floods, heapUsed after a forced GC stays within a generous bound. Embedded store, no NATS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { io, type Socket } from 'socket.io-client';
import { FanoutHub } from '../src/fanout/fanout-hub.js';
import { waitFor } from './harness/wait.js';
import {
  SocketCollector,
  SseReader,
  connectSocket,
  heapUsedAfterGc,
  publishBatch,
  streamUrl,
  subscribeSocket,
  subscriberAuth,
  subscriberToken,
  type SubscribeAck,
} from './support/clients.js';
import { testConfig } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { rawExchange, requestHead } from './support/raw-http.js';
import { E2E_SOURCES, post, standardWebhook } from './support/signers.js';

jest.setTimeout(60_000);

const MB = 1024 * 1024;
const dirs: string[] = [];

async function gateway(limits: Record<string, unknown> = {}): Promise<RunningGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hookstream-hostile-sub-'));
  dirs.push(dataDir);
  return startGateway(testConfig({ dataDir, file: { sources: E2E_SOURCES, auth: subscriberAuth(), limits } }));
}

async function connectedClients(url: string, transport: 'socketio' | 'sse'): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`hookstream_connected_clients{transport="${transport}"}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** Sends `subscribe` without waiting; the ack (if any ever comes) lands in `acks`. */
function fireSubscribe(socket: Socket, payload: unknown, acks: SubscribeAck[]): void {
  socket.emit('subscribe', payload, (ack: SubscribeAck) => acks.push(ack));
}

const countBy = (acks: SubscribeAck[]) => {
  const out: Record<string, number> = {};
  for (const a of acks) {
    const k = a.ok ? 'ok' : a.error;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
};

describe('hostile subscribers', () => {
  let gw: RunningGateway;
  let token: string;
  const sockets: Socket[] = [];
  const readers: SseReader[] = [];

  const open = async (t: string | undefined = token, url = gw.url) => {
    const s = await connectSocket(url, t);
    sockets.push(s);
    return s;
  };
  const openSse = async (url: string, opts: Parameters<typeof SseReader.open>[1] = { token }) => {
    const r = await SseReader.open(url, opts);
    readers.push(r);
    return r;
  };
  const expectAlive = async (url = gw.url) => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  };

  beforeAll(async () => {
    // The message budget is lifted here so the per-connection limits are what answers; the flood tests below run
    // on a gateway with the default budget.
    gw = await gateway({ messageBurst: 50_000, messagesPerSecond: 50_000 });
    token = await subscriberToken(['events.>']);
  });

  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
    for (const r of readers.splice(0)) r.close();
  });

  afterAll(async () => {
    await gw?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  describe('Socket.IO subscribe', () => {
    it.each([
      ['a number', 42],
      ['a string', 'events.>'],
      ['null', null],
      ['an array', ['events.>']],
      ['an empty object', {}],
      ['subjects as a string', { subjects: 'events.>' }],
      ['subjects holding a number', { subjects: [1] }],
      ['subjects holding null', { subjects: [null] }],
      ['subjects holding an array', { subjects: [['events.>']] }],
      ['subjects as an array-like object', { subjects: { length: 1, 0: 'events.>' } }],
      ['a numeric cursor', { subjects: ['events.>'], cursor: 5 }],
      ['an object cursor', { subjects: ['events.>'], cursor: { epoch: 'a', seq: 1 } }],
      ['a boolean from', { subjects: ['events.>'], from: true }],
      ['an object from', { subjects: ['events.>'], from: {} }],
    ])('answers invalid_request to %s', async (_what, payload) => {
      const s = await open();
      expect(await subscribeSocket(s, payload)).toEqual({ ok: false, error: 'invalid_request' });
    });

    it('survives a subscribe with no payload and no ack, and answers one whose only argument is the ack', async () => {
      const s = await open();
      s.emit('subscribe');
      s.emit('subscribe', { subjects: ['events.>'] }); // no ack function: the server must not call one
      expect(await s.timeout(5_000).emitWithAck('subscribe')).toEqual({ ok: false, error: 'invalid_request' });
      expect(await s.timeout(5_000).emitWithAck('unsubscribe', 7)).toEqual({ ok: false, error: 'invalid_request' });
      expect(await s.timeout(5_000).emitWithAck('unsubscribe', { id: 'nope' })).toEqual({ ok: true });
      expect((await subscribeSocket(s, { subjects: ['events.>'] })).ok).toBe(true);
      await expectAlive();
    });

    it.each([
      ['no pattern', []],
      ['an empty pattern', ['']],
      ['an empty token', ['events..x']],
      ['a > before the end', ['events.>.x']],
      ['a wildcard inside a token', ['events.*>']],
      ['a space', ['events.a b']],
      ['a line break', ['events.a\nb']],
      ['NUL', ['events.a\u0000']],
      ['unicode', ['événements.>']],
      ['a 50 KB token', ['events.' + 'a'.repeat(50_000)]],
      ['one bad pattern among good ones', ['events.>', 'events..x']],
    ])('answers invalid_subject to %s', async (_what, subjects) => {
      const s = await open();
      expect(await subscribeSocket(s, { subjects })).toEqual({ ok: false, error: 'invalid_subject' });
    });

    it('allows patternsPerSubscription (32) patterns and answers limit_exceeded to 33 and to 2,000', async () => {
      const s = await open();
      const many = (n: number) => Array.from({ length: n }, (_, i) => `events.acme.p${i}`);
      expect((await subscribeSocket(s, { subjects: many(32) })).ok).toBe(true);
      expect(await subscribeSocket(s, { subjects: many(33) })).toEqual({ ok: false, error: 'limit_exceeded' });
      expect(await subscribeSocket(s, { subjects: many(2_000) })).toEqual({ ok: false, error: 'limit_exceeded' });
      await expectAlive();
    });

    it('holds subscriptionsPerConnection (100) against 10,000 subscribes sent at once, within bounded memory', async () => {
      const hub = gw.app.get(FanoutHub);
      // Earlier tests' sockets are closed; their subscriptions end asynchronously.
      await waitFor(() => hub.subscriptionCount === 0, { message: 'no subscription left from earlier tests' });
      const baseline = 0;
      const before = heapUsedAfterGc();
      const s = await open();
      const acks: SubscribeAck[] = [];
      // All sent before the first ack can come back: the limit must count subscribes still in flight.
      for (let i = 0; i < 10_000; i++) fireSubscribe(s, { subjects: [`events.acme.s${i}`] }, acks);
      await waitFor(() => acks.length === 10_000, { timeoutMs: 30_000, message: `10,000 acks (have ${acks.length})` });
      expect(countBy(acks)).toEqual({ ok: 100, limit_exceeded: 9_900 });
      expect(hub.subscriptionCount - baseline).toBe(100);
      const growth = heapUsedAfterGc() - before;
      // Measured: ~1.3 MB with 100 live subscriptions held and 10,000 acks kept by the test itself.
      expect(growth).toBeLessThan(48 * MB);
      // Unsubscribing frees a slot.
      const first = acks.find((a): a is Extract<SubscribeAck, { ok: true }> => a.ok) as { id: string };
      expect(await s.timeout(5_000).emitWithAck('unsubscribe', { id: first.id })).toEqual({ ok: true });
      expect((await subscribeSocket(s, { subjects: ['events.acme.again'] })).ok).toBe(true);
      s.close();
      await waitFor(() => hub.subscriptionCount === baseline, { message: 'subscriptions closed with the socket' });
      await expectAlive();
    });

    it.each([
      ['garbage', { cursor: 'garbage' }],
      ['empty', { cursor: '' }],
      ['a negative seq', { cursor: 'abc_-1' }],
      ['a fractional seq', { cursor: 'abc_1.5' }],
      ['a seq beyond 2^53', { cursor: 'abc_99999999999999999999' }],
      ['an upper-case epoch', { cursor: 'ABC_1' }],
      ['a line break', { cursor: 'abc_1\nevent: closing' }],
      ['unicode digits', { cursor: 'abc_١٢' }],
      ['enormous (50 KB)', { cursor: 'a'.repeat(50_000) }],
      ['from: yesterday', { from: 'yesterday' }],
      ['from: a date only', { from: '2026-11-26' }],
      ['from: an impossible date', { from: '2026-02-30T00:00:00Z' }],
      ['from: enormous', { from: '2'.repeat(50_000) }],
    ])('answers invalid_cursor to a cursor/from that is %s', async (_what, start) => {
      const s = await open();
      expect(await subscribeSocket(s, { subjects: ['events.>'], ...start })).toEqual({
        ok: false,
        error: 'invalid_cursor',
      });
    });

    it('closes a connection whose message is over the 64 KB transport limit, and frees its slot', async () => {
      const s = await open();
      const c = new SocketCollector(s);
      await waitFor(async () => (await connectedClients(gw.url, 'socketio')) >= 1, { message: 'connection counted' });
      s.emit('subscribe', { subjects: ['events.>'], cursor: 'a'.repeat(2 * MB) });
      await c.waitForDisconnect();
      await waitFor(async () => (await connectedClients(gw.url, 'socketio')) === 0, { message: 'slot released' });
      await expectAlive();
    });

    it('closes a connection sending malformed or reserved-name packets', async () => {
      for (const packet of ['42["disconnect"]', '42[', '42{"a":1}', '4' + 'x'.repeat(100)]) {
        const s = await open();
        const c = new SocketCollector(s);
        (s.io.engine as unknown as { write(msg: string): void }).write(packet);
        await c.waitForDisconnect();
      }
      await waitFor(async () => (await connectedClients(gw.url, 'socketio')) === 0, { message: 'slots released' });
      await expectAlive();
    });

    it('refuses a handshake token of the wrong type or size with connect_error unauthorized', async () => {
      for (const auth of [
        { token: 42 },
        { token: { a: 1 } },
        { token: ['x'] },
        { token: 'x'.repeat(60_000) },
        { token: 'not.a.jwt' },
      ]) {
        await expect(connectSocket(gw.url, undefined, { auth })).rejects.toThrow('unauthorized');
      }
      // Past the transport's message limit the handshake never reaches authentication: the connection is closed.
      const big = io(gw.url, {
        transports: ['websocket'],
        auth: { token: 'x'.repeat(70_000) },
        reconnection: false,
        forceNew: true,
      });
      const outcome = await new Promise<string>((resolve) => {
        big.once('connect', () => resolve('connected'));
        big.once('connect_error', () => resolve('refused'));
        big.io.once('close', () => resolve('closed'));
      });
      big.close();
      expect(outcome).not.toBe('connected');
      await expectAlive();
    });
  });

  describe('Socket.IO flooding (default message budget: 50/s, bursts of 200)', () => {
    let flood: RunningGateway;
    beforeAll(async () => {
      flood = await gateway();
    });
    afterAll(async () => {
      await flood?.close();
    });

    it('answers a burst the size of a full resubscribe normally', async () => {
      const s = await open(token, flood.url);
      const acks: SubscribeAck[] = [];
      for (let i = 0; i < 100; i++) fireSubscribe(s, { subjects: [`events.acme.r${i}`] }, acks);
      await waitFor(() => acks.length === 100, { message: '100 acks' });
      expect(countBy(acks)).toEqual({ ok: 100 });
    });

    it('refuses messages past the burst with limit_exceeded, then closes a client that keeps flooding (rate_limited)', async () => {
      const before = heapUsedAfterGc();
      const s = await open(token, flood.url);
      const c = new SocketCollector(s);
      const acks: SubscribeAck[] = [];
      for (let i = 0; i < 5_000; i++) fireSubscribe(s, 'not an object', acks);
      await c.waitForDisconnect();
      expect(c.closings).toEqual([{ reason: 'rate_limited' }]);
      expect(c.timeline).toEqual(['closing', 'disconnect']);
      const counts = countBy(acks);
      // Past the burst every message is refused at once, then the connection is closed: never 5,000 answers. (Messages
      // of the burst still queued for their handler when the connection closes are dropped with it.)
      expect(Object.keys(counts).sort()).toEqual(expect.arrayContaining(['limit_exceeded']));
      for (const k of Object.keys(counts)) expect(['invalid_request', 'limit_exceeded']).toContain(k);
      expect(counts.limit_exceeded).toBeGreaterThanOrEqual(100);
      expect(acks.length).toBeLessThan(1_000);
      await waitFor(async () => (await connectedClients(flood.url, 'socketio')) === 0, { message: 'slot released' });
      expect(heapUsedAfterGc() - before).toBeLessThan(32 * MB);
      await expectAlive(flood.url);
    });

    it('counts every message, unknown events and messages without acks included', async () => {
      const s = await open(token, flood.url);
      const c = new SocketCollector(s);
      for (let i = 0; i < 2_000; i++) s.emit('noise', { i, pad: 'x'.repeat(100) });
      await c.waitForDisconnect();
      expect(c.closings).toEqual([{ reason: 'rate_limited' }]);
      await expectAlive(flood.url);
    });

    it('a flooding client does not disturb another client on the same gateway', async () => {
      const good = await open(token, flood.url);
      const bad = await open(token, flood.url);
      const cb = new SocketCollector(bad);
      for (let i = 0; i < 2_000; i++) bad.emit('subscribe', 1);
      await cb.waitForDisconnect();
      expect((await subscribeSocket(good, { subjects: ['events.acme.still'] })).ok).toBe(true);
      expect(good.connected).toBe(true);
    });
  });

  describe('connections per process', () => {
    let small: RunningGateway;
    beforeAll(async () => {
      small = await gateway({ connectionsPerProcess: 3 });
    });
    afterAll(async () => {
      await small?.close();
    });

    it('refuses connections past limits.connectionsPerProcess: connect_error limit_exceeded, SSE 400 limit_exceeded', async () => {
      const held = [await open(token, small.url), await open(token, small.url)];
      const sse = await openSse(streamUrl(small.url, { subject: 'events.>' }));
      expect(sse.status).toBe(200);
      await expect(connectSocket(small.url, token)).rejects.toThrow('limit_exceeded');
      const refused = await openSse(streamUrl(small.url, { subject: 'events.>' }));
      expect([refused.status, (refused.body as { error: string }).error]).toEqual([400, 'limit_exceeded']);
      await expectAlive(small.url);
      // A slot freed is a slot available again.
      held[0].close();
      await waitFor(async () => (await connectedClients(small.url, 'socketio')) === 1, { message: 'slot released' });
      expect((await open(token, small.url)).connected).toBe(true);
    });
  });

  describe('SSE', () => {
    it.each([
      ['no subject', {}],
      ['an empty subject', { subject: '' }],
      ['an empty token', { subject: 'events..x' }],
      ['a > before the end', { subject: 'events.>.x' }],
      ['a space', { subject: 'events.a b' }],
      ['CR LF and a field', { subject: 'events.a\r\nid: 1' }],
      ['LF LF and a block', { subject: 'events.a\n\nevent: closing\ndata: {}' }],
      ['NUL', { subject: 'events.a\u0000' }],
      ['unicode', { subject: 'événements.>' }],
    ])('answers 400 invalid_subject to %s', async (_what, params) => {
      const r = await openSse(streamUrl(gw.url, params));
      expect(r.status).toBe(400);
      expect(r.body).toEqual({ error: 'invalid_subject', message: expect.any(String) });
    });

    it('allows 32 subject params and answers 400 limit_exceeded to 33 and to 500', async () => {
      const many = (n: number) => Array.from({ length: n }, (_, i) => `events.acme.q${i}`);
      const ok = await openSse(streamUrl(gw.url, { subject: many(32) }));
      expect(ok.status).toBe(200);
      for (const n of [33, 500]) {
        const r = await openSse(streamUrl(gw.url, { subject: many(n) }));
        expect([r.status, (r.body as { error: string }).error]).toEqual([400, 'limit_exceeded']);
      }
      await expectAlive();
    });

    it.each([
      ['cursor=garbage', { cursor: 'garbage' }],
      ['an empty cursor', { cursor: '' }],
      ['a cursor with CR LF and a field', { cursor: 'abc_1\r\nevent: closing' }],
      ['a cursor with NUL', { cursor: 'abc_1\u0000' }],
      ['a 10 KB cursor', { cursor: 'a'.repeat(10_000) }],
      ['from=yesterday', { from: 'yesterday' }],
      ['from with a trailing LF', { from: '2026-01-01T00:00:00Z\n' }],
    ])('answers 400 invalid_cursor to %s', async (_what, params) => {
      const r = await openSse(streamUrl(gw.url, { subject: 'events.>', ...params }));
      expect(r.status).toBe(400);
      expect(r.body).toEqual({ error: 'invalid_cursor', message: expect.any(String) });
    });

    it('answers 400 invalid_request to a repeated cursor or from', async () => {
      for (const params of [{ cursor: ['a_1', 'a_2'] }, { from: ['earliest', 'latest'] }]) {
        const r = await openSse(streamUrl(gw.url, { subject: 'events.>', ...params }));
        expect([r.status, (r.body as { error: string }).error]).toEqual([400, 'invalid_request']);
      }
    });

    it('answers 400 invalid_cursor to a hostile Last-Event-ID, and Node refuses CR, LF or NUL inside a header', async () => {
      const garbage = await openSse(streamUrl(gw.url, { subject: 'events.>' }), {
        token,
        lastEventId: 'x'.repeat(8_000),
      });
      expect([garbage.status, (garbage.body as { error: string }).error]).toEqual([400, 'invalid_cursor']);
      const path = `/v1/stream?subject=events.%3E&access_token=${token}`;
      // Node's parser refuses a bare CR, a bare LF or a NUL in a header (400, before the gateway sees it).
      for (const value of ['abc_1\rinjected: x', 'abc_1\u0000x', 'abc_1\nX-Other: 1']) {
        const res = await rawExchange(gw.port, requestHead(gw.port, 'GET', path, [['Last-Event-ID', value]]));
        expect(res.status).toBe(400);
      }
      await expectAlive();
    });

    it('answers 401 to credentials with line breaks, in the header or in access_token', async () => {
      const r1 = await openSse(streamUrl(gw.url, { subject: 'events.>', access_token: `${token}\r\nevent: x` }), {});
      expect([r1.status, (r1.body as { error: string }).error]).toEqual([401, 'unauthorized']);
      const r2 = await openSse(streamUrl(gw.url, { subject: 'events.>', access_token: [token, token] }), {});
      expect([r2.status, (r2.body as { error: string }).error]).toEqual([401, 'unauthorized']);
    });

    it('carries CR, LF, NUL and SSE syntax inside events as data only: no field or frame can be injected', async () => {
      const r = await openSse(streamUrl(gw.url, { subject: ['events.inject.>', 'events.acme.>'] }));
      await r.waitForFrames((f) => f.some((x) => x.event === 'ready'), 'ready');
      const evil = 'line1\nline2\r\n\r\nevent: closing\ndata: {"reason":"shutdown"}\n\nid: 0_0\n\r\0\u2028\u2029\u0085';
      const published = await publishBatch(gw.url, [
        {
          subject: 'events.inject.x',
          id: `id\n\nevent: closing\ndata: {}\n\n${Date.now()}`,
          type: 'type\r\nretry: 1',
          data: { evil },
        },
      ]);
      const webhook = await post(gw.url, standardWebhook({ type: 'a\nb\r\nevent: closing', evil }));
      expect(webhook.status).toBe(202);
      expect(webhook.body.subject).toMatch(/^events\.acme\.[A-Za-z0-9_.-]+$/);
      const deliveries = await r.waitForDeliveries(2);
      const after = r.frames.slice(r.frames.findIndex((f) => f.event === 'ready') + 1);
      // Exactly two frames, each exactly an id and one data line; no closing, no retry, no extra field.
      expect(after).toHaveLength(2);
      for (const f of after) expect(f.fields.map(([n]) => n)).toEqual(['id', 'data']);
      expect(r.named('closing')).toEqual([]);
      expect(deliveries[0].cursor).toBe(published[0].cursor);
      expect(after[0].id).toBe(published[0].cursor);
      expect(deliveries[0].event).toMatchObject({ type: 'type\r\nretry: 1', data: { evil } });
      expect((deliveries[0].event as { id: string }).id).toContain('\n\nevent: closing');
      expect(deliveries[1].event).toMatchObject({ type: 'a\nb\r\nevent: closing', data: { evil } });
      expect(r.ended).toBe(false);
    });

    it('answers a burst of 1,000 refused stream requests within bounded memory', async () => {
      const before = heapUsedAfterGc();
      for (let batch = 0; batch < 20; batch++) {
        const answers = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            fetch(streamUrl(gw.url, { subject: 'events.>', cursor: `bad-${batch}-${i}`, access_token: token })).then(
              async (res) => [res.status, ((await res.json()) as { error: string }).error],
            ),
          ),
        );
        for (const a of answers) expect(a).toEqual([400, 'invalid_cursor']);
      }
      expect(heapUsedAfterGc() - before).toBeLessThan(32 * MB);
      await waitFor(async () => (await connectedClients(gw.url, 'sse')) === 0, {
        message: 'no SSE slot held by refusals',
      });
      await expectAlive();
    });
  });
});
