/**
 * Issue "Fan-out over Socket.IO and SSE with gap-free replay", the Socket.IO side: delivery shape and order,
 * resume by cursor, hand-off under load (compared with what is stored, read past the gateway), refusals, token
 * expiry, and gap notices after a purge, after retention and for a cursor of another epoch. Run on both event
 * stores (a real nats-server, and the embedded log), with a real socket.io-client and webhooks signed by the
 * provider's own library.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { UnsecuredJWT } from 'jose';
import { io, type Socket } from 'socket.io-client';
import { waitFor } from './harness/wait.js';
import { describeEachStore, type StoreInspector } from './support/backends.js';
import {
  LoadGenerator,
  PUBLISH_KEY,
  READER_KEY,
  SocketCollector,
  connectSocket,
  expectStrictlyIncreasing,
  mustSubscribe,
  natsMatch,
  publishBatch,
  signJwt,
  subscribeSocket,
  subscriberAuth,
  subscriberToken,
  type PublishItem,
  type PublishResult,
} from './support/clients.js';
import { uniqueStreamName } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { StreamInspector } from './support/nats-inspect.js';
import { E2E_SOURCES, post, standardWebhook } from './support/signers.js';

interface Accepted {
  id: string;
  subject: string;
  seq: number;
  cursor: string;
}

// The project-level testTimeout does not reach tests in ESM mode; set it here.
jest.setTimeout(60_000);

describeEachStore('fan-out over Socket.IO', (backend) => {
  let gw: RunningGateway;
  let inspect: StoreInspector;
  let stream: string;
  const sockets: Socket[] = [];
  const gateways: RunningGateway[] = [];

  const fileConfig = (streamName: string, limits: Record<string, unknown> = {}) => ({
    stream: { name: streamName },
    sources: E2E_SOURCES,
    auth: subscriberAuth(),
    // A small ring, so a resume a few hundred events back reads JetStream rather than memory.
    limits: { ringEvents: 256, patternsPerSubscription: 4, subscriptionsPerConnection: 8, ...limits },
  });

  const open = async (url: string, token?: string) => {
    const s = await connectSocket(url, token);
    sockets.push(s);
    return s;
  };

  /** One Standard Webhooks delivery through HTTP; returns the 202 body. */
  async function ingest(url: string, type: string, data: Record<string, unknown> = {}): Promise<Accepted> {
    const res = await post(url, standardWebhook({ type, ...data }));
    if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body as Accepted;
  }

  async function ingestMany(url: string, n: number, prefix: string): Promise<Accepted[]> {
    const out: Accepted[] = [];
    for (let i = 0; i < n; i++) out.push(await ingest(url, `${prefix}.step${i}`, { n: i }));
    return out;
  }

  beforeAll(async () => {
    await backend.setup();
    stream = uniqueStreamName('FANIO');
    gw = await startGateway(backend.configFor(fileConfig(stream)));
    gateways.push(gw);
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
    inspect = await backend.inspector(gw, stream);
  }, 30_000);

  afterEach(() => {
    for (const s of sockets.splice(0)) s.close();
  });

  afterAll(async () => {
    for (const s of sockets.splice(0)) s.close();
    await inspect?.close();
    for (const g of gateways) await g.close();
    await backend.teardown();
  }, 30_000);

  describe('delivery and resume', () => {
    it('delivers five webhooks in order in the delivery shape, acks with {ok, id, cursor}, and its cursors resume exactly', async () => {
      const token = await subscriberToken(['events.acme.>']);
      const socket = await open(gw.url, token);
      const col = new SocketCollector(socket);
      const ack = await subscribeSocket(socket, { subjects: ['events.acme.>'] });
      expect(ack).toEqual({ ok: true, id: expect.any(String), cursor: expect.any(String) });
      if (!ack.ok) throw new Error('unreachable');

      const sent: Accepted[] = [];
      const payloads: Record<string, unknown>[] = [];
      for (let i = 0; i < 5; i++) {
        const payload = { type: `invoice.e${i}`, data: { n: i, amount: 100 * i } };
        const res = await post(gw.url, standardWebhook(payload, { id: `msg_order_${i}` }));
        expect(res.status).toBe(202);
        sent.push(res.body as Accepted);
        payloads.push(payload);
        // Traffic outside the pattern must not reach this subscription.
        await publishBatch(gw.url, [{ subject: 'events.other.noise', data: { i } }]);
      }

      const got = await col.waitForEvents(ack.id, 5);
      expect(got).toHaveLength(5);
      got.forEach((d, i) => {
        expect(Object.keys(d).sort()).toEqual(['cursor', 'event', 'seq', 'subject', 'subscription']);
        expect(d.subscription).toBe(ack.id);
        expect(d.seq).toBe(sent[i].seq);
        expect(d.cursor).toBe(sent[i].cursor);
        expect(d.subject).toBe(`events.acme.invoice.e${i}`);
        expect(d.event).toMatchObject({
          specversion: '1.0',
          id: `msg_order_${i}`,
          source: '/webhooks/acme',
          type: `invoice.e${i}`,
          datacontenttype: 'application/json',
          data: payloads[i],
        });
      });
      expectStrictlyIncreasing(got.map((d) => d.seq));

      // The ack's cursor is "just before the first delivery": resuming from it gives the same five.
      const again = await open(gw.url, token);
      const againCol = new SocketCollector(again);
      const fromAck = await mustSubscribe(again, { subjects: ['events.acme.>'], cursor: ack.cursor });
      expect(fromAck.cursor).toBe(ack.cursor);
      // Resuming from a delivery's cursor gives what follows it.
      const fromSecond = await mustSubscribe(again, { subjects: ['events.acme.>'], cursor: got[1].cursor });
      expect(fromSecond.cursor).toBe(got[1].cursor);
      await againCol.waitForEvents(fromAck.id, 5);
      await againCol.waitForEvents(fromSecond.id, 3);
      // A sentinel proves nothing else was queued before it.
      const sentinel = await ingest(gw.url, 'sentinel.one');
      await againCol.waitForEvents(fromSecond.id, 4);
      expect(againCol.seqs(fromAck.id)).toEqual([...sent.map((s) => s.seq), sentinel.seq]);
      expect(againCol.seqs(fromSecond.id)).toEqual([...sent.slice(2).map((s) => s.seq), sentinel.seq]);
      expect(againCol.events(fromAck.id).map((d) => d.cursor)).toEqual([...sent.map((s) => s.cursor), sentinel.cursor]);
    });

    it('lets a client that disconnects before its first event resume exactly from the ack cursor', async () => {
      const token = await subscriberToken(['events.acme.>']);
      const first = await open(gw.url, token);
      const { cursor } = await mustSubscribe(first, { subjects: ['events.acme.>'] });
      first.close();
      const missed = await ingestMany(gw.url, 3, 'early');

      const second = await open(gw.url, token);
      const col = new SocketCollector(second);
      const { id } = await mustSubscribe(second, { subjects: ['events.acme.>'], cursor });
      await col.waitForEvents(id, 3);
      const live = await ingest(gw.url, 'early.live');
      await col.waitForEvents(id, 4);
      expect(col.seqs(id)).toEqual([...missed.map((m) => m.seq), live.seq]);
    });

    it('after a disconnect, resuming with the last cursor gives exactly the missed five, then live ones', async () => {
      const token = await subscriberToken(['events.acme.>']);
      const socket = await open(gw.url, token);
      const col = new SocketCollector(socket);
      const { id } = await mustSubscribe(socket, { subjects: ['events.acme.>'] });
      const before = await ingestMany(gw.url, 5, 'before');
      await col.waitForEvents(id, 5);
      expect(col.seqs(id)).toEqual(before.map((b) => b.seq));
      const last = col.events(id)[4].cursor;
      socket.close();

      const missed = await ingestMany(gw.url, 5, 'missed');
      await publishBatch(gw.url, [{ subject: 'events.other.noise', data: {} }]);

      const back = await open(gw.url, token);
      const backCol = new SocketCollector(back);
      const resumed = await mustSubscribe(back, { subjects: ['events.acme.>'], cursor: last });
      expect(resumed.cursor).toBe(last);
      await backCol.waitForEvents(resumed.id, 5);
      expect(backCol.seqs(resumed.id)).toEqual(missed.map((m) => m.seq));
      expect(backCol.events(resumed.id).map((d) => d.cursor)).toEqual(missed.map((m) => m.cursor));

      const live = await ingestMany(gw.url, 2, 'live');
      await backCol.waitForEvents(resumed.id, 7);
      expect(backCol.seqs(resumed.id)).toEqual([...missed, ...live].map((m) => m.seq));
    });

    it('carries several subscriptions on one connection and stops one on unsubscribe', async () => {
      const socket = await open(gw.url, await subscriberToken(['events.>']));
      const col = new SocketCollector(socket);
      const acme = await mustSubscribe(socket, { subjects: ['events.acme.multi.*'] });
      const other = await mustSubscribe(socket, { subjects: ['events.other.multi', 'events.acme.multi.b'] });
      const a = await ingest(gw.url, 'multi.a');
      const [o] = await publishBatch(gw.url, [{ subject: 'events.other.multi', data: {} }]);
      const b = await ingest(gw.url, 'multi.b');
      await col.waitForEvents(acme.id, 2);
      await col.waitForEvents(other.id, 2);
      expect(col.seqs(acme.id)).toEqual([a.seq, b.seq]);
      expect(col.seqs(other.id)).toEqual([o.seq, b.seq]);

      expect(await socket.timeout(5000).emitWithAck('unsubscribe', { id: other.id })).toEqual({ ok: true });
      const c = await ingest(gw.url, 'multi.b');
      await col.waitForEvents(acme.id, 3);
      expect(col.seqs(acme.id)).toEqual([a.seq, b.seq, c.seq]);
      expect(col.seqs(other.id)).toEqual([o.seq, b.seq]);
    });
  });

  describe('hand-off under load', () => {
    it('a resume 2,000 events back while ~300 events/s flow gets every matching stream message once, in order', async () => {
      const item = (i: number): PublishItem => ({
        subject: i % 3 === 0 ? 'events.load.a.tick' : 'events.load.b.tick',
        data: { i, pad: 'x'.repeat(200) },
      });
      // History to resume into: 2,400 events, well past the 256-event ring.
      const prefill: PublishResult[] = [];
      for (let i = 0; i < 2400; i += 400) {
        prefill.push(
          ...(await publishBatch(
            gw.url,
            Array.from({ length: 400 }, (_, k) => item(i + k)),
          )),
        );
      }
      // JetStream-only: catch-up reads are short-lived consumers on the stream, counted through the NATS API.
      const js = inspect instanceof StreamInspector ? inspect : undefined;
      const consumersBefore = await js?.consumerCount();

      const offset = 2400;
      const load = new LoadGenerator({
        urls: [gw.url],
        ratePerSecond: 300,
        maxBatch: 60,
        item: (i) => item(offset + i),
      });
      try {
        await waitFor(() => load.accepted >= 300, { timeoutMs: 15_000, message: 'load running' });
        const bySeq = new Map([...prefill, ...load.results].map((r) => [r.seq, r.cursor]));
        const startSeq = (await inspect.lastSeq()) - 2000;
        const cursor = bySeq.get(startSeq);
        if (!cursor) throw new Error(`no cursor known for seq ${startSeq}`);

        const socket = await open(gw.url, await subscriberToken(['events.load.>']));
        const col = new SocketCollector(socket);
        const all = await mustSubscribe(socket, { subjects: ['events.load.>'], cursor });
        const part = await mustSubscribe(socket, { subjects: ['events.load.a.*'], cursor });

        // Keep publishing through the hand-off, then stop.
        const target = load.accepted + 900;
        await waitFor(() => load.accepted >= target, { timeoutMs: 20_000, message: 'load after subscribe' });
        await load.stop();

        const stored = (await inspect.all()).filter((m) => m.seq > startSeq);
        const expectedAll = stored.filter((m) => natsMatch('events.load.>', m.subject)).map((m) => m.seq);
        const expectedPart = stored.filter((m) => natsMatch('events.load.a.*', m.subject)).map((m) => m.seq);
        expect(expectedAll.length).toBeGreaterThan(2800);
        expect(expectedPart.length).toBeLessThan(expectedAll.length / 2);

        await col.waitForEvents(all.id, expectedAll.length, 30_000);
        await col.waitForEvents(part.id, expectedPart.length, 30_000);
        expect(col.seqs(all.id)).toEqual(expectedAll);
        expect(col.seqs(part.id)).toEqual(expectedPart);
        expect(col.events(part.id).every((d) => d.subject === 'events.load.a.tick')).toBe(true);
        expect(load.failures).toBe(0);
        // Catch-up consumers are deleted when done, not left for JetStream's inactivity timeout.
        if (js && consumersBefore !== undefined) {
          await waitFor(async () => (await js.consumerCount()) <= consumersBefore, {
            timeoutMs: 10_000,
            message: `replay consumers deleted (before: ${consumersBefore})`,
          });
        }
      } finally {
        await load.stop();
      }
    }, 90_000);
  });

  describe('catch-up batches on every transport', () => {
    // A catch-up page goes out as one WebSocket write holding every frame; a client still on long-polling (or
    // upgrading to WebSocket in the middle of a catch-up) must get the same events, each once, in order.
    it('with socketio.polling on, a polling client and one that upgrades mid catch-up each get 1,500 events in order', async () => {
      // A second gateway on the same store, with long-polling allowed and a small per-client bound.
      const pgw = await backend.startPeer(gw, {
        ...fileConfig(stream, { clientBufferEvents: 64 }),
        socketio: { polling: true },
      });
      gateways.unshift(pgw); // closed before its owner
      const results: PublishResult[] = [];
      for (let i = 0; i < 1500; i += 500) {
        const items = Array.from({ length: 500 }, (_, k) => ({
          subject: `events.poll.n${(i + k) % 7}`,
          data: { i: i + k },
        }));
        results.push(...(await publishBatch(pgw.url, items)));
      }
      const want = results.map((r) => r.seq);
      const token = await subscriberToken(['events.poll.>']);
      const connect = (transports: ('polling' | 'websocket')[]) =>
        new Promise<Socket>((resolve, reject) => {
          const s = io(pgw.url, { transports, upgrade: true, auth: { token }, reconnection: false, forceNew: true });
          sockets.push(s);
          s.once('connect', () => resolve(s));
          s.once('connect_error', reject);
        });
      const polling = await connect(['polling']);
      const upgrading = await connect(['polling', 'websocket']);
      expect(polling.io.engine.transport.name).toBe('polling');
      const cols = [new SocketCollector(polling), new SocketCollector(upgrading)];
      const subs = [
        await mustSubscribe(polling, { subjects: ['events.poll.>'], from: 'earliest' }),
        await mustSubscribe(upgrading, { subjects: ['events.poll.>'], from: 'earliest' }),
      ];
      for (const [k, col] of cols.entries()) {
        await col.waitForEvents(subs[k].id, want.length, 30_000);
        expect(col.seqs(subs[k].id)).toEqual(want);
        expect(col.events(subs[k].id).map((d) => (d.event as { data: { i: number } }).data.i)).toEqual(
          want.map((_, i) => i),
        );
      }
      expect(polling.io.engine.transport.name).toBe('polling');
      expect(upgrading.io.engine.transport.name).toBe('websocket');
    }, 60_000);
  });

  describe('refusals', () => {
    let socket: Socket;
    beforeAll(async () => {
      socket = await connectSocket(gw.url, await subscriberToken(['events.acme.>']));
    }, 30_000);
    afterAll(() => {
      socket?.close();
    });

    it.each<[string, string, unknown]>([
      ['a pattern wider than the grant', 'forbidden', { subjects: ['events.>'] }],
      ['a pattern beside the grant', 'forbidden', { subjects: ['events.billing.>'] }],
      [
        'one forbidden pattern among allowed ones (refused, not narrowed)',
        'forbidden',
        { subjects: ['events.acme.x', 'events.other.>'] },
      ],
      ['`*` where the grant needs a literal', 'forbidden', { subjects: ['events.*.x'] }],
      ['an empty token', 'invalid_subject', { subjects: ['events..x'] }],
      ['`>` not last', 'invalid_subject', { subjects: ['events.>.x'] }],
      ['a space in a token', 'invalid_subject', { subjects: ['events.acme.a b'] }],
      ['an empty pattern', 'invalid_subject', { subjects: [''] }],
      ['a garbage cursor', 'invalid_cursor', { subjects: ['events.acme.>'], cursor: 'not-a-cursor' }],
      ['an empty cursor', 'invalid_cursor', { subjects: ['events.acme.>'], cursor: '' }],
      ['from that is no start point', 'invalid_cursor', { subjects: ['events.acme.>'], from: 'yesterday' }],
      [
        'from that is an impossible date',
        'invalid_cursor',
        { subjects: ['events.acme.>'], from: '2024-13-01T00:00:00Z' },
      ],
      ['null', 'invalid_request', null],
      ['a string', 'invalid_request', 'events.acme.>'],
      ['a number', 'invalid_request', 42],
      ['an array', 'invalid_request', ['events.acme.>']],
      ['no subjects', 'invalid_request', {}],
      ['subjects as a string', 'invalid_request', { subjects: 'events.acme.>' }],
      ['a non-string subject', 'invalid_request', { subjects: [1] }],
      ['a numeric cursor', 'invalid_request', { subjects: ['events.acme.>'], cursor: 5 }],
      [
        'more patterns than patternsPerSubscription',
        'limit_exceeded',
        { subjects: ['events.acme.a', 'events.acme.b', 'events.acme.c', 'events.acme.d', 'events.acme.e'] },
      ],
    ])('acks %s with {ok: false, error: %s}', async (_name, error, payload) => {
      expect(await subscribeSocket(socket, payload)).toEqual({ ok: false, error });
      expect(socket.connected).toBe(true);
    });

    it('keeps the connection usable after refusals', async () => {
      const col = new SocketCollector(socket);
      const { id } = await mustSubscribe(socket, { subjects: ['events.acme.after.*'] });
      const a = await ingest(gw.url, 'after.refusals');
      await col.waitForEvents(id, 1);
      expect(col.seqs(id)).toEqual([a.seq]);
    });

    it.each<[string, () => Promise<unknown>]>([
      ['a garbage token', async () => 'not.a.jwt'],
      [
        'a JWT signed with another secret',
        () => subscriberToken(['events.acme.>'], { secret: 'another-secret-0123456789-abcdefghijkl' }),
      ],
      ['a JWT without the subscribe claim', () => signJwt({})],
      ['a JWT whose subscribe is a string', () => signJwt({ subscribe: 'events.acme.>' })],
      ['a JWT whose subscribe holds a non-string', () => signJwt({ subscribe: ['events.acme.>', 7] })],
      ['an expired JWT', () => subscriberToken(['events.acme.>'], { exp: Math.floor(Date.now() / 1000) - 60 })],
      [
        'an unsigned JWT (alg none)',
        async () => new UnsecuredJWT({ subscribe: ['events.>'] }).setSubject('u1').setExpirationTime('10m').encode(),
      ],
      ['an unknown API key', async () => 'pk_unknown_0123456789abcdef'],
      ['a token that is not a string', async () => 12345],
    ])('refuses the handshake with connect_error "unauthorized" for %s', async (_name, make) => {
      const token = await make();
      const err = await connectSocket(gw.url, undefined, { auth: { token } }).then(
        (s) => {
          s.close();
          throw new Error('connected');
        },
        (e: Error) => e,
      );
      expect(err.message).toBe('unauthorized');
    });

    it('refuses a subscription past subscriptionsPerConnection with limit_exceeded', async () => {
      const s = await open(gw.url, await subscriberToken(['events.acme.>']));
      for (let i = 0; i < 8; i++) await mustSubscribe(s, { subjects: [`events.acme.limit${i}`] });
      expect(await subscribeSocket(s, { subjects: ['events.acme.limit8'] })).toEqual({
        ok: false,
        error: 'limit_exceeded',
      });
    });

    it('serves WebSocket only: a long-polling handshake is refused', async () => {
      const polling = io(gw.url, {
        transports: ['polling'],
        auth: { token: await subscriberToken(['events.acme.>']) },
        reconnection: false,
        forceNew: true,
      });
      try {
        const outcome = await new Promise<string>((resolve) => {
          polling.once('connect', () => resolve('connected'));
          polling.once('connect_error', () => resolve('refused'));
        });
        expect(outcome).toBe('refused');
      } finally {
        polling.close();
      }
    });

    it('refuses a client without credentials while the anonymous grant is empty: connect_error unauthorized', async () => {
      await expect(open(gw.url)).rejects.toThrow('unauthorized');
    });

    it('accepts an API key as the handshake token, within its subscribe grant', async () => {
      const reader = await open(gw.url, READER_KEY);
      expect(await subscribeSocket(reader, { subjects: ['events.acme.>'] })).toMatchObject({ ok: true });
      expect(await subscribeSocket(reader, { subjects: ['events.>'] })).toEqual({ ok: false, error: 'forbidden' });
      const publisher = await open(gw.url, PUBLISH_KEY);
      expect(await subscribeSocket(publisher, { subjects: ['events.>'] })).toMatchObject({ ok: true });
    });

    it('closes the connection with closing {reason: "token_expired"} at the token exp', async () => {
      const exp = Math.floor(Date.now() / 1000) + 2;
      const s = await open(gw.url, await subscriberToken(['events.acme.>'], { exp }));
      const col = new SocketCollector(s);
      const { id } = await mustSubscribe(s, { subjects: ['events.acme.>'] });
      const a = await ingest(gw.url, 'expiry.before');
      await col.waitForEvents(id, 1);
      expect(await col.waitForDisconnect(10_000)).toBe('io server disconnect');
      expect(col.closings).toHaveLength(1);
      expect(col.closings[0].reason).toBe('token_expired');
      expect(col.timeline).toEqual(['closing', 'disconnect']);
      // The hint's cursor (when given) is where to resume after refreshing the token.
      if (col.closings[0].cursor !== undefined) expect(col.closings[0].cursor).toBe(a.cursor);
    });
  });

  describe('gap notices', () => {
    // A store of its own (JetStream: a nats-server of its own, as two streams on one server cannot both hold
    // `events.>`).
    const gapBackend = backend.sibling();
    let gapStream: string;
    let gapGw: RunningGateway;
    let gapInspect: StoreInspector;
    let before: PublishResult[];
    let after: PublishResult[];
    let token: string;

    beforeAll(async () => {
      await gapBackend.setup();
      gapStream = uniqueStreamName('FANGAP');
      gapGw = await startGateway(gapBackend.configFor(fileConfig(gapStream)));
      gateways.push(gapGw);
      await waitFor(async () => (await fetch(`${gapGw.url}/readyz`)).status === 200, { message: 'gap gateway ready' });
      gapInspect = await gapBackend.inspector(gapGw, gapStream);
      token = await subscriberToken(['events.gap.>']);
      // The gateway sees these live (they sit in its ring), then the stream loses them.
      const watcher = await open(gapGw.url, token);
      const col = new SocketCollector(watcher);
      const w = await mustSubscribe(watcher, { subjects: ['events.gap.>'] });
      before = await publishBatch(
        gapGw.url,
        Array.from({ length: 5 }, (_, i) => ({ subject: 'events.gap.x', data: { i } })),
      );
      await col.waitForEvents(w.id, 5);
      await gapBackend.purge(gapGw, gapStream);
      after = await publishBatch(
        gapGw.url,
        Array.from({ length: 3 }, (_, i) => ({ subject: 'events.gap.x', data: { i: 5 + i } })),
      );
      await col.waitForEvents(w.id, 8);
      watcher.close();
    }, 30_000);

    afterAll(async () => {
      await gapInspect?.close();
      // Newest first: an embedded peer borrows the store of the gateway started before it.
      for (const g of gateways.splice(1).reverse()) await g.close();
      await gapBackend.teardown();
    }, 30_000);

    const expectGapThenRetained = async (url: string, subjects: string[], cursor: string) => {
      const s = await open(url, token);
      const col = new SocketCollector(s);
      const { id } = await mustSubscribe(s, { subjects, cursor });
      await col.waitForEvents(id, after.length);
      expect(col.log[0]).toEqual({
        kind: 'gap',
        msg: { subscription: id, from: cursor, resumeCursor: before[before.length - 1].cursor },
      });
      expect(col.gaps()).toHaveLength(1);
      expect(col.seqs(id)).toEqual(after.map((r) => r.seq));
      return col;
    };

    it('sends a gap notice first on the gateway that saw the purged events, then the oldest stored event onward', async () => {
      expect(await gapInspect.firstSeq()).toBe(after[0].seq);
      await expectGapThenRetained(gapGw.url, ['events.gap.>'], before[1].cursor);
    });

    it('sends the same gap notice on a fresh gateway (the cursor predates what is stored)', async () => {
      const fresh = await gapBackend.startPeer(gapGw, fileConfig(gapStream));
      gateways.push(fresh);
      await expectGapThenRetained(fresh.url, ['events.gap.>'], before[1].cursor);
    });

    it('sends a gap notice for a cursor of another epoch (a recreated stream), whatever its seq', async () => {
      const epoch = before[0].cursor.slice(0, before[0].cursor.lastIndexOf('_'));
      for (const foreign of ['zzzzzzzzzzzzzzzz_2', `zzzzzzzzzzzzzzzz_${after[after.length - 1].seq + 1000}`]) {
        expect(foreign.startsWith(`${epoch}_`)).toBe(false);
        await expectGapThenRetained(gapGw.url, ['events.gap.>'], foreign);
      }
    });

    it('announces the gap even when the lost events would not have matched the filter', async () => {
      const s = await open(gapGw.url, token);
      const col = new SocketCollector(s);
      const { id } = await mustSubscribe(s, { subjects: ['events.gap.unrelated'], cursor: before[0].cursor });
      await waitFor(() => col.gaps(id).length === 1, { message: 'gap notice' });
      expect(col.gaps(id)[0]).toEqual({ subscription: id, from: before[0].cursor, resumeCursor: before[4].cursor });
    });

    it('gives no second notice when resuming from resumeCursor, and replays everything retained from "earliest"', async () => {
      const s = await open(gapGw.url, token);
      const col = new SocketCollector(s);
      const resumed = await mustSubscribe(s, { subjects: ['events.gap.>'], cursor: before[4].cursor });
      const earliest = await mustSubscribe(s, { subjects: ['events.gap.>'], from: 'earliest' });
      expect(earliest.cursor).toBe(before[4].cursor);
      await col.waitForEvents(resumed.id, after.length);
      await col.waitForEvents(earliest.id, after.length);
      const [sentinel] = await publishBatch(gapGw.url, [{ subject: 'events.gap.x', data: { sentinel: true } }]);
      await col.waitForEvents(resumed.id, after.length + 1);
      await col.waitForEvents(earliest.id, after.length + 1);
      expect(col.gaps()).toEqual([]);
      expect(col.seqs(resumed.id)).toEqual([...after.map((r) => r.seq), sentinel.seq]);
      expect(col.seqs(earliest.id)).toEqual([...after.map((r) => r.seq), sentinel.seq]);
    });
  });

  describe('gap after retention', () => {
    // A store of its own whose events expire after 2 s (stream.maxAge): JetStream's max_age, the embedded
    // log's retention timer.
    const retBackend = backend.sibling();
    let retGw: RunningGateway;
    let retInspect: StoreInspector;

    beforeAll(async () => {
      await retBackend.setup();
      const retStream = uniqueStreamName('FANRET');
      retGw = await startGateway(
        retBackend.configFor({
          ...fileConfig(retStream),
          stream: { name: retStream, maxAge: '2s', duplicateWindow: '1s' },
        }),
      );
      await waitFor(async () => (await fetch(`${retGw.url}/readyz`)).status === 200, { message: 'gateway ready' });
      retInspect = await retBackend.inspector(retGw, retStream);
    }, 30_000);

    afterAll(async () => {
      await retInspect?.close();
      await retGw?.close();
      await retBackend.teardown();
    }, 30_000);

    it('announces events removed by stream.maxAge with a gap notice first, then goes on live', async () => {
      const token = await subscriberToken(['events.gap.>']);
      const before = await publishBatch(
        retGw.url,
        Array.from({ length: 5 }, (_, i) => ({ subject: 'events.gap.old', data: { i } })),
      );
      await waitFor(async () => (await retInspect.firstSeq()) > before[4].seq, {
        timeoutMs: 20_000,
        message: 'the store to expire the first five events',
      });
      expect(await retInspect.count()).toBe(0);

      const s = await open(retGw.url, token);
      const col = new SocketCollector(s);
      const { id } = await mustSubscribe(s, { subjects: ['events.gap.>'], cursor: before[1].cursor });
      await waitFor(() => col.gaps(id).length === 1, { message: 'gap notice' });
      const [live] = await publishBatch(retGw.url, [{ subject: 'events.gap.new', data: {} }]);
      await col.waitForEvents(id, 1);
      expect(col.log).toEqual([
        { kind: 'gap', msg: { subscription: id, from: before[1].cursor, resumeCursor: before[4].cursor } },
        { kind: 'event', msg: expect.objectContaining({ subscription: id, seq: live.seq, cursor: live.cursor }) },
      ]);
    });
  });
});
