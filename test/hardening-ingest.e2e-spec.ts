/**
 * Issue "Hardening", the ingest path: attacks an unauthenticated client (or one holding a single captured delivery)
 * could make on `POST /webhooks/:source` and `POST /v1/events`, each shown failing before the fix.
 * - Verification cost: a 1 MiB body under a Stripe-Signature of ~1,600 groups must not stall the event loop
 *   (a parallel /healthz poller's p99, against a gateway in its own process).
 * - Unsigned delivery ids and event types (GitHub, Shopify, generic hmac): a captured body cannot be replayed under
 *   new ids or re-typed, and an id claimed in advance cannot swallow a real delivery. Both stores.
 * - Namespaces: a source named `v1` or an API key id with `:` is refused at start; each key publishes as its own
 *   CloudEvents source.
 * - Source names match the raw path byte for byte.
 * - An early refusal (413, 401, 404) reaches a plain Node client that is still streaming its body.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import Stripe from 'stripe';
import { ConfigError } from '../src/config/app-config.js';
import { waitFor } from './harness/wait.js';
import { describeEachStore, type StoreInspector } from './support/backends.js';
import { PUBLISH_KEY } from './support/clients.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { GatewayProcess, startGateway, type RunningGateway } from './support/gateway.js';
import { rawRequest, type RawResponse } from './support/raw-http.js';
import {
  E2E_SOURCES,
  RAW_SECRET,
  STRIPE_SECRET,
  githubWebhook,
  post,
  standardWebhook,
  type SignedRequest,
} from './support/signers.js';

jest.setTimeout(120_000);

const MiB = 1024 * 1024;
const SHOPIFY_SECRET = 'shpss_hardening_test_secret';

const SOURCES = [
  ...E2E_SOURCES,
  { name: 'shop', verifier: 'shopify', secrets: [SHOPIFY_SECRET] },
  // Two secrets: a verifier that hashes the body once per signature group pays twice per group.
  { name: 'stripe2', verifier: 'stripe', secrets: [STRIPE_SECRET, 'whsec_second_secret_for_rotation'] },
];

/** A gateway in a process of its own (embedded store in a temp DATA_DIR): the client side never shares its loop. */
async function startProcess(file: Record<string, unknown>): Promise<{ gw: GatewayProcess; dispose(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'hookstream-hard-ingest-'));
  const gw = await GatewayProcess.start(file, { DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
  return {
    gw,
    async dispose() {
      await gw.dispose();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Open-loop /healthz poller: one probe every `everyMs` whatever the previous ones do, so a stall shows in many. */
function pollHealth(url: string, everyMs = 10): { samples(): number; stop(): Promise<number[]> } {
  const latencies: number[] = [];
  const pending = new Set<Promise<void>>();
  const timer = setInterval(() => {
    const started = performance.now();
    const probe = fetch(`${url}/healthz`)
      .then(async (res) => {
        await res.arrayBuffer();
        latencies.push(res.status === 200 ? performance.now() - started : Number.POSITIVE_INFINITY);
      })
      .catch(() => {
        latencies.push(Number.POSITIVE_INFINITY);
      })
      .finally(() => pending.delete(probe));
    pending.add(probe);
  }, everyMs);
  return {
    samples: () => latencies.length,
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
      return latencies;
    },
  };
}

function p99(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)];
}

describe('verification cost (Stripe signature groups)', () => {
  let proc: Awaited<ReturnType<typeof startProcess>>;
  let gw: GatewayProcess;

  beforeAll(async () => {
    // Its own process: the poller must not share the gateway's event loop.
    proc = await startProcess({ ingest: { maxBodyBytes: '1MB' }, sources: SOURCES });
    gw = proc.gw;
  });

  afterAll(async () => {
    await proc?.dispose();
  });

  it('refuses a 1 MiB body under ~1,600 t=/v1= groups quickly, and /healthz stays responsive meanwhile', async () => {
    const body = Buffer.alloc(MiB, 'x');
    // ~1,600 groups of 10 bytes: a 16 KiB header, just under Node's header limit with the rest of the head.
    const groups = Array.from({ length: 1_550 }, (_, i) => `t=${(i % 9) + 1},v1=00`).join(',');
    const valid = new Stripe('sk_test_x').webhooks.generateTestHeaderString({
      payload: body.toString(),
      secret: STRIPE_SECRET,
    });
    const attack = (): Promise<RawResponse & { ms: number }> => {
      const started = performance.now();
      return rawRequest(gw.port, {
        path: '/webhooks/stripe2',
        headers: [
          ['content-type', 'application/octet-stream'],
          ['content-length', String(body.length)],
          // A validly signed group among the junk: the cap, not a failed compare, is what refuses it.
          ['stripe-signature', `${groups},${valid}`],
        ],
        body,
        timeoutMs: 100_000,
      }).then((r) => ({ ...r, ms: performance.now() - started }));
    };

    const poller = pollHealth(gw.url);
    const answers: (RawResponse & { ms: number })[] = [];
    for (let round = 0; round < 3; round++) answers.push(...(await Promise.all([attack(), attack()])));
    // Enough probes for a p99 to mean something, also when the attack is answered at once.
    await waitFor(() => poller.samples() >= 100, { message: '100 /healthz probes' });
    const latencies = await poller.stop();

    // Before the fix: one HMAC over the 1 MiB body per group and secret, ~3 GiB of SHA-256 per request, seconds of
    // a blocked event loop each (probes stalled or failed: p99 Infinity here; the junk hid a valid group, so it was
    // even accepted). After: refused on the count, before any HMAC.
    expect(p99(latencies)).toBeLessThan(1_000);
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(5_000);
    for (const a of answers) expect([a.status, a.body.error]).toEqual([401, 'invalid_signature']);
  });
});

describeEachStore('unsigned delivery ids, namespaces and source paths', (backend) => {
  let gw: RunningGateway;
  let inspect: StoreInspector;
  let stream: string;

  beforeAll(async () => {
    await backend.setup();
    stream = uniqueStreamName('HARDINGEST');
    gw = await startGateway(
      backend.configFor({
        stream: { name: stream },
        sources: SOURCES,
        auth: { apiKeys: [{ id: 'publisher', key: PUBLISH_KEY, publish: ['events.>'] }] },
      }),
    );
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
    inspect = await backend.inspector(gw, stream);
  });

  afterAll(async () => {
    await inspect?.close();
    await gw?.close();
    await backend.teardown();
  });

  /** A provider whose delivery id and event type travel in headers its signature does not cover. */
  interface UnsignedIdProvider {
    name: string;
    sign(payload: object, id: string, type: string): Promise<SignedRequest>;
    /** The delivery id the gateway answers for `id`. */
    answerId(id: string): string;
  }

  const PROVIDERS: UnsignedIdProvider[] = [
    {
      name: 'github',
      sign: (payload, id, type) => githubWebhook(type, payload, { hookId: '77', delivery: id }),
      answerId: (id) => `77:${id}`,
    },
    {
      name: 'shopify',
      sign: async (payload, id, type) => {
        const body = JSON.stringify(payload);
        return {
          path: '/webhooks/shop',
          headers: {
            'content-type': 'application/json',
            'x-shopify-hmac-sha256': createHmac('sha256', SHOPIFY_SECRET).update(body).digest('base64'),
            'x-shopify-event-id': id,
            'x-shopify-topic': type,
          },
          body,
        };
      },
      answerId: (id) => id,
    },
    {
      name: 'generic hmac with idHeader',
      sign: async (payload, id) => {
        const body = JSON.stringify(payload);
        return {
          path: '/webhooks/raw',
          headers: {
            'content-type': 'application/json',
            'x-signature': `sha256=${createHmac('sha256', RAW_SECRET).update(body).digest('hex')}`,
            'x-delivery': id,
          },
          body,
        };
      },
      answerId: (id) => id,
    },
  ];

  describe.each(PROVIDERS.map((p) => [p.name, p] as const))('%s', (_name, provider) => {
    it('a captured body replayed under a new delivery id and event type is a duplicate, stored once', async () => {
      const payload = { action: 'paid', order: randomUUID() };
      const first = await post(gw.url, await provider.sign(payload, randomUUID(), 'orders'));
      expect(first.status).toBe(202);
      const before = await inspect.lastSeq();
      for (const type of ['orders', 'refunds']) {
        const replayId = randomUUID();
        const replay = await post(gw.url, await provider.sign(payload, replayId, type));
        // Before the fix: 202, a second copy under the new id (and subject).
        expect([replay.status, replay.body]).toEqual([
          200,
          { status: 'duplicate', id: provider.answerId(replayId), seq: first.body.seq },
        ]);
      }
      expect(await inspect.lastSeq()).toBe(before);
    });

    it('an id claimed in advance with a captured body cannot make the real delivery a duplicate', async () => {
      const captured = { action: 'created', order: randomUUID() };
      expect((await post(gw.url, await provider.sign(captured, randomUUID(), 'orders'))).status).toBe(202);
      // The attacker resends the captured body under the id the next real delivery will carry.
      const future = randomUUID();
      const claim = await post(gw.url, await provider.sign(captured, future, 'orders'));
      expect(claim.status).toBe(200);
      // Before the fix: 200 duplicate, and the real event was never stored.
      const real = { action: 'created', order: randomUUID(), real: true };
      const res = await post(gw.url, await provider.sign(real, future, 'orders'));
      expect([res.status, res.body.status, res.body.id]).toEqual([202, 'accepted', provider.answerId(future)]);
      expect((await inspect.get(res.body.seq))?.envelope.data).toEqual(real);
      // And its own retry is a duplicate of it.
      const retry = await post(gw.url, await provider.sign(real, future, 'orders'));
      expect([retry.status, retry.body.seq]).toEqual([200, res.body.seq]);
    });
  });

  it('keeps signed delivery ids as they are: one body under two signed ids is two events (Standard Webhooks)', async () => {
    const payload = { type: 'same.body', n: randomUUID() };
    const a = await post(gw.url, standardWebhook(payload, { id: `msg_${randomUUID()}` }));
    const b = await post(gw.url, standardWebhook(payload, { id: `msg_${randomUUID()}` }));
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(b.body.seq).toBeGreaterThan(a.body.seq);
  });

  it('gives each API key its own CloudEvents source: /v1/events/<key id>', async () => {
    const res = await fetch(`${gw.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subject: 'events.billing.invoice.paid', id: randomUUID(), data: { n: 1 } }),
    });
    expect(res.status).toBe(202);
    const { results } = (await res.json()) as { results: { seq: number }[] };
    expect((await inspect.get(results[0].seq))?.envelope.source).toBe('/v1/events/publisher');
  });

  it.each(['/webhooks/%61cme', '/WEBHOOKS/acme', '/Webhooks/acme', '/webhooks/acme/', '/webhooks/acme%2F'])(
    'matches the source name on the raw path: %s is 404 unknown_source, nothing stored',
    async (path) => {
      const signed = standardWebhook({ type: 'path.test' });
      const before = await inspect.lastSeq();
      const res = await rawRequest(gw.port, {
        path,
        headers: [...Object.entries(signed.headers), ['content-length', String(Buffer.byteLength(signed.body))]],
        body: signed.body,
      });
      expect([res.status, res.body]).toEqual([404, { error: 'unknown_source', message: expect.any(String) }]);
      expect(await inspect.lastSeq()).toBe(before);
    },
  );

  it('still takes the exact path with a query string', async () => {
    const signed = standardWebhook({ type: 'path.query' });
    const res = await post(gw.url, { ...signed, path: `${signed.path}?via=query` });
    expect(res.status).toBe(202);
  });
});

describe('namespaces at start', () => {
  const hmacSource = (name: string) => ({
    name,
    verifier: 'hmac',
    header: 'X-Signature',
    secrets: ['0123456789abcdef0123'],
  });

  it.each(['v1', 'V1'])('refuses a source named %s (it would share /v1/events idempotency keys)', (name) => {
    expect(() => testConfig({ file: { sources: [hmacSource('ok'), hmacSource(name)] } })).toThrow(ConfigError);
    expect(() => testConfig({ file: { sources: [hmacSource(name)] } })).toThrow(
      `sources[0].name: "${name}" is reserved for POST /v1/events`,
    );
  });

  it('refuses an API key id containing ":" (two keys could then store under one idempotency key)', () => {
    const keys = [
      { id: 'billing', key: 'k'.repeat(32), publish: ['events.>'] },
      { id: 'billing:x', key: 'y'.repeat(32), publish: ['events.>'] },
    ];
    expect(() => testConfig({ file: { auth: { apiKeys: keys } } })).toThrow(
      'auth.apiKeys[1].id: "billing:x" must not contain ":"',
    );
  });
});

describe('an early refusal reaches a client that is still sending', () => {
  let proc: Awaited<ReturnType<typeof startProcess>>;
  let gw: GatewayProcess;

  beforeAll(async () => {
    // Its own process: the reset this guards against needs the gateway to close while the client has not yet read.
    proc = await startProcess({
      ingest: { maxBodyBytes: '1MB' },
      sources: SOURCES,
      auth: { apiKeys: [{ id: 'publisher', key: PUBLISH_KEY, publish: ['events.>'] }] },
    });
    gw = proc.gw;
  });

  afterAll(async () => {
    await proc?.dispose();
  });

  interface StreamOutcome {
    status?: number;
    body?: unknown;
    /** The error the client got before it had read a whole answer. */
    error?: string;
    /** Bytes the client handed to the connection before it closed. */
    sent: number;
  }

  /**
   * A plain Node client streaming `total` bytes chunked (no content-length), on a connection of its own, as fast as
   * the socket takes them, until the connection closes: the answer it read, or the error it got instead.
   */
  function streamBody(path: string, headers: Record<string, string>, total: number): Promise<StreamOutcome> {
    return new Promise((resolve) => {
      let outcome: Omit<StreamOutcome, 'sent'> | undefined;
      let sent = 0;
      const req = httpRequest(`${gw.url}${path}`, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/octet-stream', ...headers },
      });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          outcome ??= { status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString()) as unknown };
        });
        res.on('error', (err: NodeJS.ErrnoException) => (outcome ??= { error: err.code ?? err.message }));
      });
      req.on('error', (err: NodeJS.ErrnoException) => (outcome ??= { error: err.code ?? err.message }));
      req.on('close', () => resolve({ ...(outcome ?? { error: 'closed without an answer' }), sent }));
      const chunk = Buffer.alloc(64 * 1024, 'z');
      const pump = () => {
        while (sent < total && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
  }

  const ROUNDS = 40;

  it(`reads the 413 every time when streaming 2 MB chunked to a 1 MB limit (${ROUNDS} rounds)`, async () => {
    const outcomes: unknown[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const r = await streamBody('/webhooks/raw', { 'x-signature': 'sha256=00', 'x-delivery': `d-${i}` }, 2 * MiB);
      outcomes.push(r.error ?? [r.status, (r.body as { error?: string }).error]);
    }
    // Before the fix: some rounds ended in ECONNRESET (or EPIPE) before the answer was read.
    expect(outcomes).toEqual(Array(ROUNDS).fill([413, 'payload_too_large']));
  });

  it(`reads the 401 of POST /v1/events without a key, and the 404 of an unknown source, while streaming (${ROUNDS} rounds each)`, async () => {
    const outcomes: unknown[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const r = await streamBody('/v1/events', {}, 2 * MiB);
      outcomes.push(r.error ?? [r.status, (r.body as { error?: string }).error]);
      const u = await streamBody('/webhooks/nope', {}, 2 * MiB);
      outcomes.push(u.error ?? [u.status, (u.body as { error?: string }).error]);
    }
    expect(outcomes).toEqual(
      Array.from({ length: 2 * ROUNDS }, (_, i) => (i % 2 === 0 ? [401, 'unauthorized'] : [404, 'unknown_source'])),
    );
  });

  it('stops reading a body that goes on past the bound: answers, then closes the connection', async () => {
    // 64 MB against a 1 MB limit: the gateway reads and drops a bounded amount (4 MiB here), then closes the
    // socket, so the client cannot hand over much more than that (plus what the kernel buffers).
    const r = await streamBody('/webhooks/raw', { 'x-signature': 'sha256=00' }, 64 * MiB);
    expect(r.sent).toBeLessThan(32 * MiB);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });
});
