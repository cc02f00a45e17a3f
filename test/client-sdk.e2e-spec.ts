/**
 * The client SDK (`@hookstream/client`, packages/client) in Node against a real gateway on a real nats-server, over
 * both transports: delivery and ack cursors, resume after the gateway closes the connection, token renewal,
 * persistKey with an injected storage, refusals, dedupe by seq, and a gap notice when the stream is recreated.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { EventSource } from 'eventsource';
import { createApp } from '../src/bootstrap.js';
import type { AppConfig } from '../src/config/app-config.js';
import { createLogger } from '../src/logging/logger.js';
import {
  createClient,
  type ClientOptions,
  type ClientStatus,
  type Delivery,
  type EventSourceConstructor,
  type EventSourceLike,
  type GapNotice,
  type HookstreamClient,
  type HookstreamError,
  type StorageLike,
  type Transport,
} from '@hookstream/client';
import { describeWithNats, NatsServerProcess } from './harness/nats-server.js';
import { waitFor } from './harness/wait.js';
import { publishBatch, subscriberAuth, subscriberToken, type PublishResult } from './support/clients.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { freePort, startGateway, type RunningGateway } from './support/gateway.js';

jest.setTimeout(60_000);

/** Short backoff so reconnects in tests take milliseconds, not seconds. */
const FAST = { minDelayMs: 50, maxDelayMs: 500 };

class MemoryStorage implements StorageLike {
  readonly map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.map.set(key, value);
  }
  removeItem(key: string): void {
    this.map.delete(key);
  }
}

/** An in-process gateway that can be stopped and started again on the same port, as a restarted replica. */
class FixedPortGateway {
  private app?: INestApplication;
  constructor(
    readonly port: number,
    private readonly config: AppConfig,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const app = await createApp(this.config, { logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent') });
    await app.listen(this.port, '127.0.0.1');
    this.app = app;
    await waitFor(async () => (await fetch(`${this.url}/readyz`)).status === 200, { message: 'gateway ready' });
  }

  /** A graceful stop: clients are told `closing {reason: 'shutdown'}` first. */
  async stop(): Promise<void> {
    const app = this.app;
    this.app = undefined;
    await app?.close();
  }
}

/** What a client saw: deliveries, gaps, statuses and errors, in order. */
class Seen {
  readonly deliveries: Delivery[] = [];
  readonly gaps: GapNotice[] = [];
  readonly statuses: ClientStatus[] = [];
  readonly errors: HookstreamError[] = [];

  constructor(client: HookstreamClient) {
    client.on('status', (s) => this.statuses.push(s));
    client.on('error', (e) => this.errors.push(e));
  }

  readonly push = (d: Delivery) => this.deliveries.push(d);
  readonly gap = (n: GapNotice) => this.gaps.push(n);

  seqs(): number[] {
    return this.deliveries.map((d) => d.seq);
  }

  async count(n: number, what = 'deliveries'): Promise<void> {
    await waitFor(() => this.deliveries.length >= n, {
      timeoutMs: 15_000,
      message: `${n} ${what} (have ${this.deliveries.length})`,
    });
  }
}

describeWithNats('client SDK against a real gateway (Node)', () => {
  let nats: NatsServerProcess;
  let stream: string;
  let gw: FixedPortGateway;
  /** A second replica on the same stream: publishes while `gw` is down. */
  let publisher: RunningGateway;
  let token: string;
  const clients: HookstreamClient[] = [];

  const file = () => ({ stream: { name: stream }, auth: subscriberAuth(), limits: { ringEvents: 256 } });

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    stream = uniqueStreamName('SDK');
    gw = new FixedPortGateway(await freePort(), testConfig({ natsUrl: nats.url, file: file() }));
    await gw.start();
    publisher = await startGateway(testConfig({ natsUrl: nats.url, file: file() }));
    token = await subscriberToken(['events.>']);
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    for (const c of clients.splice(0)) c.close();
    await publisher?.close();
    await gw?.stop();
    await nats?.stop();
  });

  const make = (options: Partial<ClientOptions>): HookstreamClient => {
    const client = createClient({
      url: gw.url,
      EventSource: EventSource as unknown as EventSourceConstructor,
      storage: null,
      reconnect: FAST,
      ...options,
    });
    clients.push(client);
    return client;
  };

  const publish = (subject: string, n: number, tag = 'e'): Promise<PublishResult[]> =>
    publishBatch(
      publisher.url,
      Array.from({ length: n }, (_, i) => ({ subject, data: { tag, i } })),
    );

  describe.each(['websocket', 'sse'] as Transport[])('%s transport', (transport) => {
    const base = `events.sdk.${transport}`;

    it('delivers matching events in order, each with its cursor, after an ack that carries the start cursor', async () => {
      const client = make({ token, transport });
      const seen = new Seen(client);
      const sub = client.subscribe(`${base}.basic.>`, seen.push);
      await sub.ready;
      expect(client.status).toBe('live');
      expect(sub.cursor).toEqual(expect.any(String));
      await publish('events.sdk.elsewhere.x', 2);
      const sent = await publish(`${base}.basic.created`, 3);
      await seen.count(3);
      expect(seen.seqs()).toEqual(sent.map((r) => r.seq));
      expect(seen.deliveries.map((d) => d.cursor)).toEqual(sent.map((r) => r.cursor));
      expect(seen.deliveries[0]).toMatchObject({
        subject: `${base}.basic.created`,
        event: { data: { tag: 'e', i: 0 } },
      });
      expect(sub.cursor).toBe(sent[2].cursor);
      expect(seen.errors).toEqual([]);
    });

    it('resumes from its cursor after the gateway closes the connection and comes back: none missing, none twice', async () => {
      const client = make({ token, transport });
      const seen = new Seen(client);
      const subject = `${base}.resume.tick`;
      const sub = client.subscribe(`${base}.resume.>`, seen.push);
      await sub.ready;
      const before = await publish(subject, 3, 'before');
      await seen.count(3);

      await gw.stop(); // says `closing {reason: 'shutdown'}` to the client first
      await waitFor(() => seen.statuses.includes('reconnecting'), { message: 'reconnecting status' });
      const whileDown = await publish(subject, 4, 'down');
      await gw.start();
      await waitFor(() => client.status === 'live', { message: 'live again' });
      await seen.count(7, 'deliveries after the restart');
      const after = await publish(subject, 2, 'after');
      await seen.count(9);

      expect(seen.seqs()).toEqual([...before, ...whileDown, ...after].map((r) => r.seq));
      expect(seen.statuses).toEqual(expect.arrayContaining(['reconnecting', 'live']));
      expect(seen.errors).toEqual([]);
    });

    it('calls getToken when the token is refused and again when it expires, and resumes each time', async () => {
      const tokens: string[] = [];
      const getToken = async () => {
        // The first renewal gives a token that expires within two seconds; later ones last.
        const exp = tokens.length === 0 ? Math.floor(Date.now() / 1000) + 2 : '10m';
        tokens.push(await subscriberToken(['events.>'], { exp }));
        return tokens[tokens.length - 1];
      };
      const client = make({ token: 'not-a-valid-token', getToken, transport });
      const seen = new Seen(client);
      const subject = `${base}.token.tick`;
      const sub = client.subscribe(`${base}.token.>`, seen.push);
      await sub.ready;
      expect(tokens).toHaveLength(1); // refused → renewed once
      const first = await publish(subject, 2, 'first');
      await seen.count(2);

      // The gateway closes the connection at `exp` (token_expired); the SDK renews and resumes.
      await waitFor(() => tokens.length >= 2, { timeoutMs: 15_000, message: 'getToken called after expiry' });
      await waitFor(() => client.status === 'live', { message: 'live with the renewed token' });
      const second = await publish(subject, 2, 'second');
      await seen.count(4);
      expect(seen.seqs()).toEqual([...first, ...second].map((r) => r.seq));
      expect(seen.statuses).toContain('reconnecting');
      expect(seen.errors.map((e) => e.code)).toEqual([]);
    });

    it('a new client resumes from the cursor kept under persistKey in the injected storage', async () => {
      const storage = new MemoryStorage();
      const key = `sdk-${transport}-persist`;
      const pattern = `${base}.persist.>`;
      const subject = `${base}.persist.tick`;

      const c1 = make({ token, transport, storage });
      const seen1 = new Seen(c1);
      const s1 = c1.subscribe(pattern, seen1.push, { persistKey: key, from: 'earliest' });
      await s1.ready;
      expect(storage.getItem(key)).toBe(s1.cursor); // the acknowledged start position, before any event
      const first = await publish(subject, 3, 'first');
      await seen1.count(3);
      expect(storage.getItem(key)).toBe(first[2].cursor);
      c1.close();

      const whileAway = await publish(subject, 2, 'away');
      const c2 = make({ token, transport, storage });
      const seen2 = new Seen(c2);
      // `from: earliest` would replay `first` again if the stored cursor were not used.
      const s2 = c2.subscribe(pattern, seen2.push, { persistKey: key, from: 'earliest' });
      await s2.ready;
      await seen2.count(2);
      const later = await publish(subject, 1, 'later');
      await seen2.count(3);
      expect(seen2.seqs()).toEqual([...whileAway, ...later].map((r) => r.seq));
      expect(storage.getItem(key)).toBe(later[0].cursor);
    });

    it('forgets a stored cursor the gateway refuses and starts from `from`', async () => {
      const storage = new MemoryStorage();
      const key = `sdk-${transport}-bad`;
      storage.setItem(key, 'not a cursor');
      const sent = await publish(`${base}.badcursor.tick`, 2);
      const client = make({ token, transport, storage });
      const seen = new Seen(client);
      const sub = client.subscribe(`${base}.badcursor.>`, seen.push, { persistKey: key, from: 'earliest' });
      await sub.ready;
      await seen.count(2);
      expect(seen.seqs()).toEqual(sent.map((r) => r.seq));
      expect(storage.getItem(key)).toBe(sent[1].cursor);
      expect(seen.errors).toEqual([]);
    });

    it('reports a refused subscription through ready, onError and the error event; others keep working', async () => {
      const narrow = await subscriberToken(['events.sdk.>']);
      const client = make({ token: narrow, transport });
      const seen = new Seen(client);
      const onError = jest.fn<(e: HookstreamError) => void>();
      const refused = client.subscribe('events.>', seen.push, { onError });
      await expect(refused.ready).rejects.toMatchObject({ code: 'forbidden' });
      expect(onError).toHaveBeenCalledWith(expect.objectContaining({ code: 'forbidden' }));
      expect(seen.errors.map((e) => e.code)).toEqual(['forbidden']);

      const ok = client.subscribe(`${base}.refusal.>`, seen.push);
      await ok.ready;
      const sent = await publish(`${base}.refusal.tick`, 1);
      await seen.count(1);
      expect(seen.seqs()).toEqual([sent[0].seq]);
      expect(client.status).toBe('live');
    });
  });

  it.each(['websocket', 'sse'] as Transport[])(
    '%s: gives up on limit_exceeded after a few retries (more patterns than limits.patternsPerSubscription)',
    async (transport) => {
      const client = make({ token, transport });
      const seen = new Seen(client);
      const patterns = Array.from({ length: 33 }, (_, i) => `events.sdk.limit.p${i}`);
      const sub = client.subscribe(patterns, seen.push);
      await expect(sub.ready).rejects.toMatchObject({ code: 'limit_exceeded' });
      expect(seen.errors.map((e) => e.code)).toEqual(['limit_exceeded']);
    },
  );

  it('the gateway serves the SDK as one ES module any origin may import, and the console without the demo button', async () => {
    const sdk = await fetch(`${gw.url}/sdk/hookstream.js`);
    expect(sdk.status).toBe(200);
    expect(sdk.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(sdk.headers.get('access-control-allow-origin')).toBe('*');
    const code = await sdk.text();
    expect(code).toMatch(/export\s*\{[^}]*\bcreateClient\b/);
    expect(code).not.toMatch(/\bimport\s*[\w{*"']|\brequire\(/); // everything bundled: no imports left
    expect((await fetch(`${gw.url}/sdk/hookstream.js.map`)).status).toBe(200);

    const page = await fetch(`${gw.url}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<script type="module" src="/console/console.js">');
    for (const asset of ['console.js', 'console.css'])
      expect((await fetch(`${gw.url}/console/${asset}`)).status).toBe(200);

    const settings = await fetch(`${gw.url}/console/config.json`);
    // No anonymous grant here: the default is everything (a token is needed for it).
    expect(await settings.json()).toEqual({ subjectPrefix: 'events', defaultSubjects: ['events.>'], demoSource: null });
    const demo = await fetch(`${gw.url}/console/demo-webhook`, { method: 'POST' });
    expect(demo.status).toBe(404);
    expect(await demo.json()).toMatchObject({ error: 'not_found' });
  });

  it('drops deliveries whose seq is not above the last one seen (an EventSource that repeats every frame)', async () => {
    // Each message is handed to the SDK twice, followed by the message before it once more.
    class RepeatingEventSource implements EventSourceLike {
      private readonly es: EventSource;
      private previous?: MessageEvent;
      constructor(url: string) {
        this.es = new EventSource(url);
      }
      addEventListener(type: string, listener: (e: MessageEvent) => void): void {
        if (type !== 'message') return this.es.addEventListener(type, listener as never);
        this.es.addEventListener('message', (e: MessageEvent) => {
          listener(e);
          listener(e);
          if (this.previous) listener(this.previous);
          this.previous = e;
        });
      }
      close(): void {
        this.es.close();
      }
    }
    const client = make({ token, transport: 'sse', EventSource: RepeatingEventSource });
    const seen = new Seen(client);
    const sub = client.subscribe('events.sdk.dedupe.>', seen.push);
    await sub.ready;
    const sent = await publish('events.sdk.dedupe.tick', 5);
    await seen.count(5);
    const last = await publish('events.sdk.dedupe.tick', 1);
    await seen.count(6);
    expect(seen.seqs()).toEqual([...sent, ...last].map((r) => r.seq));
  });

  // Last: it replaces the stream under every gateway of this file.
  it('a gap notice resets the seq mark and calls onGap: the stream is recreated under connected clients', async () => {
    const ws = make({ token, transport: 'websocket' });
    const sse = make({ token, transport: 'sse' });
    const seenWs = new Seen(ws);
    const seenSse = new Seen(sse);
    await Promise.all([
      ws.subscribe('events.sdk.gap.>', seenWs.push, { onGap: seenWs.gap }).ready,
      sse.subscribe('events.sdk.gap.>', seenSse.push, { onGap: seenSse.gap }).ready,
    ]);
    const old = await publish('events.sdk.gap.tick', 3, 'old');
    await Promise.all([seenWs.count(3), seenSse.count(3)]);
    expect(old[2].seq).toBeGreaterThan(2); // earlier tests filled the stream: new seqs will be lower

    await publisher.close();
    await gw.stop();
    const nc = await connect({ servers: nats.url });
    try {
      await (await jetstreamManager(nc)).streams.delete(stream);
    } finally {
      await nc.close();
    }
    await gw.start(); // creates the stream again: a new epoch, sequences from 1
    const fresh = await publishBatch(
      gw.url,
      [1, 2].map((i) => ({ subject: 'events.sdk.gap.tick', data: { tag: 'new', i } })),
    );
    expect(fresh.map((r) => r.seq)).toEqual([1, 2]);

    for (const seen of [seenWs, seenSse]) {
      await seen.count(5, 'deliveries after the gap');
      expect(seen.gaps).toHaveLength(1);
      expect(seen.gaps[0].from).toBe(old[2].cursor);
      expect(seen.deliveries.map((d) => d.cursor)).toEqual([...old, ...fresh].map((r) => r.cursor));
    }
  });
});
