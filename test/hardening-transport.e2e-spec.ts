/**
 * Hardening, transport side: what a client without credentials, or with only the anonymous grant, could do to
 * connection slots, handshakes, message parsing, CORS and the console's demo webhook. Every case here is an
 * attack that worked before this hardening. The transport limits run on the embedded store; the
 * connect-then-reset loop runs on both stores.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as netConnect, type Socket as NetSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import WebSocket from 'ws';
import { Authenticator } from '../src/auth/auth.service.js';
import { FanoutHub } from '../src/fanout/fanout-hub.js';
import { waitFor } from './harness/wait.js';
import { describeEachStore } from './support/backends.js';
import {
  SocketCollector,
  SseReader,
  connectSocket,
  mustSubscribe,
  streamUrl,
  subscribeSocket,
  subscriberAuth,
  subscriberToken,
} from './support/clients.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { rawRequest } from './support/raw-http.js';
import { ACME_SECRET, E2E_SOURCES, post, standardWebhook } from './support/signers.js';

jest.setTimeout(90_000);

const dirs: string[] = [];
const gateways: RunningGateway[] = [];
const sockets: Socket[] = [];
const closers: (() => void)[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  for (const close of closers.splice(0)) close();
});

afterAll(async () => {
  for (const gw of gateways.splice(0)) await gw.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A gateway on the embedded store with this config file (sources and subscriber auth unless given). */
async function gateway(file: Record<string, unknown>): Promise<RunningGateway> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hookstream-hard-transport-'));
  dirs.push(dataDir);
  const gw = await startGateway(
    testConfig({ dataDir, file: { sources: E2E_SOURCES, auth: subscriberAuth(), ...file } }),
  );
  gateways.push(gw);
  return gw;
}

async function connectedClients(url: string, transport: 'socketio' | 'sse'): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`hookstream_connected_clients{transport="${transport}"}`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

interface IoOptions {
  token?: string;
  headers?: Record<string, string>;
  /** The client's own loopback address (127.0.0.2 is another client address on the same machine). */
  localAddress?: string;
}

/** A WebSocket-only Socket.IO client; rejects with the `connect_error` (its `message` and `data`). */
function connectIo(url: string, { token, headers, localAddress }: IoOptions = {}): Promise<Socket> {
  const options: Partial<ManagerOptions & SocketOptions> & { localAddress?: string } = {
    transports: ['websocket'],
    auth: token === undefined ? {} : { token },
    reconnection: false,
    forceNew: true,
    timeout: 10_000,
    extraHeaders: headers,
    localAddress,
  };
  const socket = io(url, options);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      sockets.push(socket);
      resolve(socket);
    });
    socket.once('connect_error', (err: Error) => {
      socket.close();
      reject(err);
    });
  });
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  /** Parsed JSON of a refusal; undefined for an open stream. */
  body: unknown;
  close(): void;
}

/**
 * One HTTP request on a connection of its own. A refusal is read to the end; a 200 event stream is left open
 * (it holds its slot) until `close()`.
 */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, {
      method: opts.method ?? 'GET',
      headers: opts.headers,
      localAddress: opts.localAddress,
      agent: false,
    });
    req.once('error', reject);
    req.once('response', (res) => {
      const close = () => req.destroy();
      closers.push(close);
      const base = { status: res.statusCode ?? 0, headers: res.headers, close };
      if (res.statusCode === 200 && String(res.headers['content-type']).startsWith('text/event-stream')) {
        return resolve({ ...base, body: undefined });
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ ...base, body });
      });
    });
    req.end();
  });
}

const errorOf = (a: Answer) => [a.status, (a.body as { error?: string } | undefined)?.error];

async function refusalOf(p: Promise<Socket>): Promise<{ message: string; data?: unknown }> {
  return p.then(
    () => {
      throw new Error('the handshake was accepted');
    },
    (err: Error & { data?: unknown }) => ({ message: err.message, data: err.data }),
  );
}

describe('anonymous clients and connection caps', () => {
  let token: string;
  beforeAll(async () => {
    token = await subscriberToken(['events.>']);
  });

  it('refuses a Socket.IO handshake without credentials while the anonymous grant is empty, taking no slot', async () => {
    const gw = await gateway({});
    expect(await refusalOf(connectIo(gw.url))).toMatchObject({ message: 'unauthorized' });
    expect(await connectedClients(gw.url, 'socketio')).toBe(0);
    // Credentials still connect.
    expect((await connectIo(gw.url, { token })).connected).toBe(true);
  });

  it('gives anonymous clients their own cap (limits.anonymousConnections), below the process cap', async () => {
    const gw = await gateway({
      auth: { ...subscriberAuth(), anonymous: { subscribe: ['events.acme.>'] } },
      limits: { anonymousConnections: 2 },
    });
    const anonSocket = await connectIo(gw.url);
    const anonSse = await request(streamUrl(gw.url, { subject: 'events.acme.>' }));
    expect(anonSse.status).toBe(200);
    // Both anonymous slots are taken: a third anonymous client is refused on either transport.
    expect(await refusalOf(connectIo(gw.url))).toEqual({
      message: 'limit_exceeded',
      data: { limit: 'anonymousConnections' },
    });
    const refused = await request(streamUrl(gw.url, { subject: 'events.acme.>' }));
    expect(errorOf(refused)).toEqual([400, 'limit_exceeded']);
    expect((refused.body as { message: string }).message).toMatch(/limits\.anonymousConnections/);
    // Clients with credentials are not affected.
    expect((await connectIo(gw.url, { token })).connected).toBe(true);
    const withToken = await request(streamUrl(gw.url, { subject: 'events.>' }), {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(withToken.status).toBe(200);
    // A freed anonymous slot can be taken again.
    anonSocket.close();
    await waitFor(async () => (await connectedClients(gw.url, 'socketio')) === 1, { message: 'anonymous slot freed' });
    expect((await connectIo(gw.url)).connected).toBe(true);
  });

  it('caps connections per client address on both transports together; another address is not affected', async () => {
    const gw = await gateway({ limits: { connectionsPerIp: 2 } });
    const auth = { Authorization: `Bearer ${token}` };
    await connectIo(gw.url, { token });
    expect((await request(streamUrl(gw.url, { subject: 'events.>' }), { headers: auth })).status).toBe(200);

    expect(await refusalOf(connectIo(gw.url, { token }))).toEqual({
      message: 'limit_exceeded',
      data: { limit: 'connectionsPerIp' },
    });
    const refused = await request(streamUrl(gw.url, { subject: 'events.>' }), { headers: auth });
    expect(errorOf(refused)).toEqual([400, 'limit_exceeded']);
    expect((refused.body as { message: string }).message).toMatch(/limits\.connectionsPerIp/);
    // Without a trusted proxy header configured, a forwarding header the client writes itself changes nothing.
    expect(await refusalOf(connectIo(gw.url, { token, headers: { 'X-Forwarded-For': '203.0.113.9' } }))).toMatchObject({
      message: 'limit_exceeded',
    });

    // 127.0.0.2 is another client.
    expect((await connectIo(gw.url, { token, localAddress: '127.0.0.2' })).connected).toBe(true);
    const other = await request(streamUrl(gw.url, { subject: 'events.>' }), {
      headers: auth,
      localAddress: '127.0.0.2',
    });
    expect(other.status).toBe(200);
  });

  it('with server.trustedProxyHeader, counts the address the proxy appended last', async () => {
    const gw = await gateway({ limits: { connectionsPerIp: 1 }, server: { trustedProxyHeader: 'X-Forwarded-For' } });
    const via = (chain: string) => ({ token, headers: { 'X-Forwarded-For': chain } });
    await connectIo(gw.url, via('198.51.100.1'));
    // What the client wrote before the proxy's entry does not make it someone else.
    expect(await refusalOf(connectIo(gw.url, via('10.9.9.9, 198.51.100.1')))).toMatchObject({
      message: 'limit_exceeded',
    });
    await connectIo(gw.url, via('198.51.100.1, 198.51.100.2'));
    const sse = (chain: string) =>
      request(streamUrl(gw.url, { subject: 'events.>' }), {
        headers: { Authorization: `Bearer ${token}`, 'X-Forwarded-For': chain },
      });
    expect(errorOf(await sse('198.51.100.2'))).toEqual([400, 'limit_exceeded']);
    expect((await sse('198.51.100.3')).status).toBe(200);
  });
});

/** A bare engine.io WebSocket, to send Socket.IO packets by hand. */
class RawEngine {
  readonly messages: string[] = [];
  closed = false;
  localPort = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('upgrade', (res) => (this.localPort = res.socket.localPort ?? 0));
    ws.on('message', (data: Buffer) => this.messages.push(data.toString()));
    ws.on('close', () => (this.closed = true));
    ws.on('error', () => undefined);
  }

  /** Opens the WebSocket; with `handshake`, waits for engine.io's open packet too. */
  static async open(port: number, handshake = true): Promise<RawEngine> {
    const raw = new RawEngine(new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`));
    closers.push(() => raw.ws.terminate());
    if (handshake) {
      await waitFor(() => raw.closed || raw.messages.some((m) => m.startsWith('0')), { message: 'engine.io open' });
    } else {
      await waitFor(() => raw.closed || raw.localPort > 0, { message: 'WebSocket upgrade' });
    }
    return raw;
  }

  /** CONNECT to the default namespace with `auth`. */
  connect(auth: Record<string, unknown>): void {
    this.ws.send(`40${JSON.stringify(auth)}`);
  }

  /** Socket.IO answers to CONNECT: `40…` (connected) or `44…` (connect_error). */
  connectAnswers(): string[] {
    return this.messages.filter((m) => m.startsWith('40') || m.startsWith('44'));
  }
}

describe('one slot per transport connection', () => {
  it('answers CONNECT packets sent together on one WebSocket with one connection and connect_errors', async () => {
    const gw = await gateway({});
    const token = await subscriberToken(['events.>']);
    const raw = await RawEngine.open(gw.port);
    // All before the first answer: socket.io ignores a CONNECT only once the namespace is joined.
    for (let i = 0; i < 20; i++) raw.connect({ token });
    await waitFor(() => raw.connectAnswers().length === 20, { message: 'every CONNECT answered' });
    const answers = raw.connectAnswers();
    expect(answers.filter((a) => /^40\{"sid":/.test(a))).toHaveLength(1);
    expect(answers.filter((a) => a.startsWith('44{"message":"limit_exceeded"'))).toHaveLength(19);
    expect(await connectedClients(gw.url, 'socketio')).toBe(1);
  });
});

/** Holds calls of a wrapped async method until the test lets them go. */
class Gate {
  on = false;
  arrived = 0;
  private readonly waiting: (() => void)[] = [];

  async pass(): Promise<void> {
    if (!this.on) return;
    this.arrived++;
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    for (const go of this.waiting.splice(0)) go();
  }
}

describeEachStore('a client that resets mid-connect leaks nothing', (backend) => {
  let gw: RunningGateway;
  let token: string;
  const authGate = new Gate();
  const subscribeGate = new Gate();
  /** Remote ports of connections the server has seen close. */
  const serverClosed = new Set<number>();

  beforeAll(async () => {
    await backend.setup();
    gw = await startGateway(
      backend.configFor({
        stream: { name: uniqueStreamName('HARDTR') },
        sources: E2E_SOURCES,
        auth: subscriberAuth(),
      }),
    );
    token = await subscriberToken(['events.>']);
    // Slow token verification and subscription set-up, held open by the test, widen the window a client can
    // vanish in to as long as the test likes: the same calls, only later.
    const auth = gw.app.get(Authenticator);
    const authenticate = auth.authenticate.bind(auth);
    auth.authenticate = async (t) => {
      await authGate.pass();
      return authenticate(t);
    };
    const hub = gw.app.get(FanoutHub);
    const subscribe = hub.subscribe.bind(hub);
    hub.subscribe = async (req, sink) => {
      await subscribeGate.pass();
      return subscribe(req, sink);
    };
    (gw.app.getHttpServer() as Server).on('connection', (s: NetSocket) => {
      const port = s.remotePort ?? -1;
      s.once('close', () => serverClosed.add(port));
    });
  });

  afterAll(async () => {
    await gw?.close();
    await backend.teardown();
  });

  const sseHead = (port: number) =>
    `GET /v1/stream?subject=events.%3E HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n` +
    `Authorization: Bearer ${token}\r\n\r\n`;

  /** A raw TCP connection that has sent an SSE request; resolves with it once connected and written. */
  async function rawSse(): Promise<NetSocket> {
    const sock = netConnect(gw.port, '127.0.0.1');
    sock.on('error', () => undefined);
    closers.push(() => sock.destroy());
    await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
    sock.write(sseHead(gw.port));
    return sock;
  }

  /** Resets the client side, waits until the server has seen the connection close, then lets held calls go on. */
  async function resetWhileHeld(gate: Gate, localPort: number, destroy: () => void): Promise<void> {
    destroy();
    await waitFor(() => serverClosed.has(localPort), { message: 'server saw the connection close' });
    gate.release();
  }

  const ticks = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
  };

  it('Socket.IO closed while its token is verified, SSE closed while authenticated or subscribed, and random resets: every slot and subscription comes back, and clients still connect', async () => {
    const ROUNDS = 10;
    authGate.on = true;
    for (let i = 0; i < ROUNDS; i++) {
      const raw = await RawEngine.open(gw.port);
      const before = authGate.arrived;
      raw.connect({ token });
      await waitFor(() => authGate.arrived > before, { message: 'handshake held in token verification' });
      await resetWhileHeld(authGate, raw.localPort, () => raw.ws.terminate());
    }
    for (let i = 0; i < ROUNDS; i++) {
      const sock = await rawSse();
      const before = authGate.arrived;
      await waitFor(() => authGate.arrived > before, { message: 'SSE request held in authentication' });
      await resetWhileHeld(authGate, sock.localPort ?? -1, () => sock.destroy());
    }
    authGate.on = false;
    subscribeGate.on = true;
    for (let i = 0; i < ROUNDS; i++) {
      const sock = await rawSse();
      const before = subscribeGate.arrived;
      await waitFor(() => subscribeGate.arrived > before, { message: 'SSE request held in subscribe' });
      await resetWhileHeld(subscribeGate, sock.localPort ?? -1, () => sock.destroy());
    }
    subscribeGate.on = false;

    // Without holding anything: resets at every point from the WebSocket upgrade to the first frames.
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 0) {
        const raw = await RawEngine.open(gw.port, false);
        raw.ws.terminate();
      } else if (i % 3 === 1) {
        const raw = await RawEngine.open(gw.port);
        raw.connect({ token });
        await ticks(i % 7);
        raw.ws.terminate();
      } else {
        const sock = await rawSse();
        await ticks(i % 7);
        sock.destroy();
      }
    }

    const hub = gw.app.get(FanoutHub);
    let left = '';
    await waitFor(
      async () => {
        const counts = [
          await connectedClients(gw.url, 'socketio'),
          await connectedClients(gw.url, 'sse'),
          hub.subscriptionCount,
        ];
        left = `Socket.IO ${counts[0]}, SSE ${counts[1]}, subscriptions ${counts[2]}`;
        return counts.every((n) => n === 0);
      },
      { message: 'no connection or subscription left' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; still held: ${left}`);
    });

    // A normal client of each transport connects, counts once, and receives events.
    const socket = await connectSocket(gw.url, token);
    sockets.push(socket);
    const collector = new SocketCollector(socket);
    const { id } = await mustSubscribe(socket, { subjects: ['events.acme.>'] });
    const sse = await SseReader.open(streamUrl(gw.url, { subject: 'events.acme.>' }), { token });
    closers.push(() => sse.close());
    expect(sse.status).toBe(200);
    await sse.waitForFrames((f) => f.some((x) => x.event === 'ready'), 'SSE ready');
    expect(await connectedClients(gw.url, 'socketio')).toBe(1);
    expect(await connectedClients(gw.url, 'sse')).toBe(1);
    const sent = await post(gw.url, standardWebhook({ type: 'after.resets' }));
    expect(sent.status).toBe(202);
    expect((await collector.waitForEvents(id, 1))[0].seq).toBe(sent.body.seq);
    expect((await sse.waitForDeliveries(1))[0].seq).toBe(sent.body.seq);
  });
});

describe('Socket.IO message size and CORS', () => {
  let gw: RunningGateway;
  let token: string;
  beforeAll(async () => {
    gw = await gateway({});
    token = await subscriberToken(['events.>']);
  });

  it('closes a connection that sends a message over 64 KB, before it is parsed; the largest valid subscribe still passes', async () => {
    const s = await connectIo(gw.url, { token });
    // 32 patterns of 1,024 characters: the most patternsPerSubscription allows, about 33 KB.
    const longest = Array.from({ length: 32 }, (_, i) => `events.${String(i).padStart(2, '0')}${'a'.repeat(1015)}`);
    expect(longest.every((p) => p.length === 1024)).toBe(true);
    expect(await subscribeSocket(s, { subjects: longest })).toMatchObject({ ok: true });

    const c = new SocketCollector(s);
    const answers: unknown[] = [];
    s.emit('subscribe', { subjects: ['events.>'], cursor: 'a'.repeat(200 * 1024) }, (a: unknown) => answers.push(a));
    expect(await c.waitForDisconnect()).toBe('transport close');
    expect(answers).toEqual([]);
    await waitFor(async () => (await connectedClients(gw.url, 'socketio')) === 0, { message: 'slot released' });
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  it('answers CORS without credentials on both transports', async () => {
    const preflight = await request(`${gw.url}/socket.io/?EIO=4&transport=polling`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://page.example', 'Access-Control-Request-Method': 'GET' },
    });
    expect(preflight.headers['access-control-allow-credentials']).toBeUndefined();
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
    const sse = await request(streamUrl(gw.url, { subject: 'events.>' }), {
      headers: { Origin: 'http://page.example', Authorization: `Bearer ${token}` },
    });
    expect(sse.status).toBe(200);
    expect(sse.headers['access-control-allow-origin']).toBe('*');
    expect(sse.headers['access-control-allow-credentials']).toBeUndefined();
  });

  it('with server.allowedOrigins, refuses pages of other origins on both transports', async () => {
    const listed = await gateway({ server: { allowedOrigins: ['http://app.example'] } });
    const from = (origin: string) => ({ token, headers: { Origin: origin } });
    expect(await refusalOf(connectIo(listed.url, from('http://evil.example')))).toMatchObject({ message: 'forbidden' });
    expect((await connectIo(listed.url, from('http://app.example'))).connected).toBe(true);
    // No Origin: not a browser page; its credentials decide.
    expect((await connectIo(listed.url, { token })).connected).toBe(true);

    const sse = (origin: string) =>
      request(streamUrl(listed.url, { subject: 'events.>' }), {
        headers: { Origin: origin, Authorization: `Bearer ${token}` },
      });
    expect(errorOf(await sse('http://evil.example'))).toEqual([403, 'forbidden']);
    const ok = await sse('http://app.example');
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('http://app.example');
    expect(ok.headers.vary).toMatch(/Origin/);

    const preflight = (origin: string) =>
      request(`${listed.url}/socket.io/?EIO=4&transport=polling`, {
        method: 'OPTIONS',
        headers: { Origin: origin, 'Access-Control-Request-Method': 'GET' },
      });
    expect((await preflight('http://evil.example')).headers['access-control-allow-origin']).toBeUndefined();
    expect((await preflight('http://app.example')).headers['access-control-allow-origin']).toBe('http://app.example');
  });
});

describe('POST /console/demo-webhook', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gateway({
      sources: [...E2E_SOURCES, { name: 'demo', verifier: 'standard-webhooks', secrets: [ACME_SECRET], demo: true }],
      console: { demoSource: 'demo' },
    });
  });

  const demo = (headers: [string, string][]) =>
    rawRequest(gw.port, { path: '/console/demo-webhook', headers: [...headers, ['Content-Length', '0']] });
  const own = () => `http://127.0.0.1:${gw.port}`;

  it("refuses requests that are not from the console's own page: no Origin, another origin, a cross-site fetch", async () => {
    for (const headers of [
      [],
      [['Origin', 'http://evil.example']],
      [['Origin', 'null']],
      [['Origin', `http://127.0.0.1:${gw.port + 1}`]],
      [
        ['Origin', own()],
        ['Sec-Fetch-Site', 'cross-site'],
      ],
    ] as [string, string][][]) {
      const res = await demo(headers);
      expect([res.status, res.body.error]).toEqual([403, 'forbidden']);
    }
    const res = await demo([
      ['Origin', own()],
      ['Sec-Fetch-Site', 'same-origin'],
    ]);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ status: 'accepted', subject: 'events.demo.console.test' });
  });

  it('is rate-limited: past a burst, 429 limit_exceeded with Retry-After', async () => {
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof demo>> | undefined;
    for (let i = 0; i < 30; i++) {
      const res = await demo([['Origin', own()]]);
      statuses.push(res.status);
      if (res.status === 429) refused ??= res;
    }
    expect(statuses.every((s) => s === 202 || s === 429)).toBe(true);
    expect(refused?.body).toEqual({ error: 'limit_exceeded', message: expect.any(String) });
    expect(refused?.headers['retry-after']).toBe('1');
  });
});
