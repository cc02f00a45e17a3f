/**
 * Outbound webhook e2e support: a receiver (a real node:http server on 127.0.0.1) that verifies every request with the
 * official `standardwebhooks` library and records it, the config file the suites use, and API helpers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { INestApplication } from '@nestjs/common';
import { createApp } from '../../src/bootstrap.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { createLogger } from '../../src/logging/logger.js';
import type { EventStore } from '../../src/store/event-store.port.js';
import type { Resolver } from '../../src/outbound/ssrf-guard.js';
import type { RunningGateway } from './gateway.js';

export const PUB_KEY = 'pk_outbound_publisher_0123456789';
/** endpoints: true, subscribe limited to `<prefix>.svc.>`. */
export const SVC_KEY = 'sk_outbound_service_0123456789ab';
/** endpoints: true, another owner with the same grant. */
export const OTHER_KEY = 'ok_outbound_other_0123456789abcd';
export const ADMIN_KEY = 'ak_outbound_admin_0123456789abcd';
/** A key that may subscribe but not manage endpoints. */
export const PLAIN_KEY = 'lk_outbound_plain_0123456789abcd';

export function outboundFile(
  stream: string,
  delivery: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    stream: { name: stream, maxBytes: '64MB' },
    auth: {
      apiKeys: [
        { id: 'pub', key: PUB_KEY, publish: ['events.>'], subscribe: ['events.>'] },
        { id: 'svc', key: SVC_KEY, subscribe: ['events.svc.>'], endpoints: true },
        { id: 'other', key: OTHER_KEY, subscribe: ['events.svc.>'], endpoints: true },
        { id: 'ops', key: ADMIN_KEY, admin: true },
        { id: 'plain', key: PLAIN_KEY, subscribe: ['events.>'] },
      ],
    },
    delivery: {
      retrySchedule: ['300ms', '600ms'],
      jitter: 0.1,
      timeout: '2s',
      allowPrivateNetworks: true,
      ...delivery,
    },
    ...extra,
  };
}

export interface OutboundGatewayOptions {
  store?: EventStore;
  resolver?: Resolver;
}

/** An in-process gateway on 127.0.0.1:0 with a resolver of the test's own for the SSRF guard. */
export async function startOutboundGateway(
  config: AppConfig,
  opts: OutboundGatewayOptions = {},
): Promise<RunningGateway> {
  const app: INestApplication = await createApp(config, {
    logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
    store: opts.store,
    outbound: { resolver: opts.resolver },
  });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  let closed = false;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    app,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}

// ---- API ----

export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

export async function api(
  base: string,
  method: string,
  path: string,
  key: string | null,
  body?: unknown,
  raw?: string,
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (key !== null) headers.authorization = `Bearer ${key}`;
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export async function publish(
  base: string,
  subject: string,
  ids: string[],
): Promise<{ id: string; seq: number; cursor: string }[]> {
  const res = await api(
    base,
    'POST',
    '/v1/events',
    PUB_KEY,
    ids.map((id, i) => ({ subject, id, data: { n: i, id } })),
  );
  if (res.status !== 202) throw new Error(`publish answered ${res.status}: ${JSON.stringify(res.body)}`);
  return (res.body.results as { id: string; seq: number; cursor: string }[]).map((r, i) => ({ ...r, id: ids[i] }));
}

// ---- receiver ----

export interface Received {
  id: string;
  timestamp: string;
  attempt: number;
  cursor: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** The official library accepted the signature (and the timestamp). */
  verified: boolean;
  at: number;
  /** The status answered (null: hung up) and when the answer went out. */
  status: number | null;
  answeredAt: number;
}

export type Answer = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'hang';
export type Behaviour = (r: Received, req: IncomingMessage) => Answer;

/** A webhook receiver on 127.0.0.1: records every request and answers as `behaviour` says (default 200). */
export class Receiver {
  readonly received: Received[] = [];
  behaviour: Behaviour = () => ({ status: 200, body: 'ok' });
  secret = '';
  /** Requests being answered right now, and the most at once. */
  concurrent = 0;
  maxConcurrent = 0;
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private readonly hanging = new Set<ServerResponse>();
  port = 0;

  static async start(port = 0): Promise<Receiver> {
    const r = new Receiver();
    await r.listen(port);
    return r;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(port = this.port): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stops listening and drops every connection: the next attempts are refused. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const res of this.hanging) res.destroy();
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const h = (n: string) => String(req.headers[n] ?? '');
      let verified = false;
      try {
        new Webhook(this.secret).verify(body, {
          'webhook-id': h('webhook-id'),
          'webhook-timestamp': h('webhook-timestamp'),
          'webhook-signature': h('webhook-signature'),
        });
        verified = true;
      } catch {
        verified = false;
      }
      const r: Received = {
        id: h('webhook-id'),
        timestamp: h('webhook-timestamp'),
        attempt: Number(h('hookstream-attempt')),
        cursor: h('hookstream-cursor'),
        path: req.url ?? '',
        headers: req.headers,
        body: body.toString('utf8'),
        verified,
        at: Date.now(),
        status: null,
        answeredAt: 0,
      };
      this.received.push(r);
      this.concurrent++;
      this.maxConcurrent = Math.max(this.maxConcurrent, this.concurrent);
      const answer = this.behaviour(r, req);
      if (answer === 'hang') {
        this.hanging.add(res);
        res.on('close', () => {
          this.hanging.delete(res);
          this.concurrent--;
        });
        return;
      }
      // Answered a moment later, so overlapping requests would show in `maxConcurrent`.
      setTimeout(() => {
        this.concurrent--;
        r.status = answer.status;
        r.answeredAt = Date.now();
        res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? '');
      }, answer.delayMs ?? 5);
    });
  }

  /** webhook-ids of requests answered 2xx by the behaviour so far, in arrival order. */
  ids(): string[] {
    return this.received.map((r) => r.id);
  }

  async close(): Promise<void> {
    await this.down();
  }
}

/** Creates an endpoint and points the receiver's verifier at its secret. */
export async function createEndpoint(
  base: string,
  receiver: Receiver,
  body: Record<string, unknown>,
  key = SVC_KEY,
): Promise<{ id: string; secret: string; body: any }> {
  const res = await api(base, 'POST', '/v1/endpoints', key, { url: `${receiver.url}/hook`, ...body });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${JSON.stringify(res.body)}`);
  receiver.secret = res.body.secret;
  return { id: res.body.id, secret: res.body.secret, body: res.body };
}
