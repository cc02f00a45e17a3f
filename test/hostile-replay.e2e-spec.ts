/**
 * Issue "Hardening", finding 2: deep replays on the embedded store must not stall the gateway. A million events
 * are stored, then four anonymous clients keep asking `subject=events.demo.zz.*&from=earliest` (a pattern that
 * matches none of them, so each catch-up walks the whole table) while webhooks arrive and a poller hits
 * `/healthz`. The gateway runs as its own process (`node dist/main.js`), so the latencies measured are its own.
 *
 * The store is filled through the store port in large concurrent batches before the gateway starts (the port
 * group-commits them, a thousand rows a transaction): the same rows ingest would write, in seconds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { EmbeddedEventStore } from '../src/store/embedded/embedded-event-store.adapter.js';
import { waitFor } from './harness/wait.js';
import { SseReader, streamUrl } from './support/clients.js';
import { testConfig } from './support/config.js';
import { GatewayProcess } from './support/gateway.js';
import { ACME_SECRET, post, standardWebhook } from './support/signers.js';

jest.setTimeout(240_000);

const EVENTS = 1_000_000;
const ATTACKERS = 4;
/** The load phase ends after this many webhooks, or after LOAD_MS, whichever comes first. */
const WEBHOOKS = 150;
const LOAD_MS = 20_000;
const ATTACK = { subject: 'events.demo.zz.*', from: 'earliest' };
const enc = new TextEncoder();

const dirs: string[] = [];
let gw: GatewayProcess | undefined;

function p99(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)] ?? Infinity;
}

async function fill(dataDir: string): Promise<void> {
  const store = new EmbeddedEventStore(testConfig({ dataDir }), {
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
  });
  await store.start();
  try {
    const time = new Date().toISOString();
    const batch = 20_000;
    for (let base = 0; base < EVENTS; base += batch) {
      const appends: Promise<unknown>[] = [];
      for (let i = base; i < base + batch; i++) {
        const type = `order${i % 10}.created`;
        const envelope = {
          specversion: '1.0',
          id: `fill_${i}`,
          source: '/webhooks/demo',
          type,
          time,
          datacontenttype: 'application/json',
          data: { n: i, note: 'a stored event that no attacker pattern matches' },
        };
        appends.push(
          store.append({
            subject: `events.demo.${type}`,
            msgId: `demo:fill_${i}`,
            data: enc.encode(JSON.stringify(envelope)),
          }),
        );
      }
      await Promise.all(appends);
    }
    expect((await store.state()).lastSeq).toBe(EVENTS);
  } finally {
    await store.stop();
  }
}

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hookstream-replay-load-'));
  dirs.push(dataDir);
  await fill(dataDir);
  gw = await GatewayProcess.start(
    {
      sources: [{ name: 'demo', verifier: 'standard-webhooks', secrets: [ACME_SECRET], tolerance: '5m' }],
      auth: { anonymous: { subscribe: ['events.demo.>'] } },
    },
    { DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
  );
});

afterAll(async () => {
  await gw?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('deep replays on the embedded store (a million events)', () => {
  it('four anonymous clients replaying a pattern that matches nothing leave webhooks and /healthz responsive', async () => {
    const url = gw!.url;
    let stop = false;
    const health: number[] = [];
    const webhooks: number[] = [];
    let connections = 0;

    const poller = (async () => {
      while (!stop) {
        const t0 = performance.now();
        const res = await fetch(`${url}/healthz`);
        await res.arrayBuffer();
        health.push(performance.now() - t0);
        expect(res.status).toBe(200);
      }
    })();

    // Each attacker opens the deep replay, holds it while the poller completes a few probes, and opens it again:
    // every connection starts a fresh walk of the table from the first event.
    const attackers = Array.from({ length: ATTACKERS }, async () => {
      while (!stop) {
        const stream = await SseReader.open(streamUrl(url, ATTACK), { keepFrames: true });
        try {
          expect(stream.status).toBe(200);
          await stream.waitForFrames((f) => f.some((x) => x.event === 'ready'), 'the ready frame', 60_000);
          connections++;
          const probes = health.length;
          await waitFor(() => stop || health.length >= probes + 3, { timeoutMs: 60_000, intervalMs: 5 });
          expect(stream.deliveries()).toEqual([]);
        } finally {
          stream.close();
        }
      }
    });

    const started = Date.now();
    for (let i = 0; i < WEBHOOKS && Date.now() - started < LOAD_MS; i++) {
      const req = standardWebhook({ type: 'order.created', n: i }, { source: 'demo' });
      const t0 = performance.now();
      const res = await post(url, req);
      webhooks.push(performance.now() - t0);
      expect(res.status).toBe(202);
    }
    stop = true;
    await Promise.all([poller, ...attackers]);

    const report = {
      webhooks: webhooks.length,
      webhookP99Ms: Math.round(p99(webhooks)),
      probes: health.length,
      healthzP99Ms: Math.round(p99(health)),
      attackConnections: connections,
    };
    process.stderr.write(`deep replay under load: ${JSON.stringify(report)}\n`);
    expect(connections).toBeGreaterThanOrEqual(ATTACKERS);
    expect(report.webhookP99Ms).toBeLessThan(1000);
    expect(report.healthzP99Ms).toBeLessThan(1000);

    // The walk still reaches the end of the table and hands over to live: a matching event arrives.
    const holder = await SseReader.open(streamUrl(url, ATTACK));
    try {
      await holder.waitForFrames((f) => f.some((x) => x.event === 'ready'), 'the ready frame');
      const hit = await post(url, standardWebhook({ type: 'zz.hit' }, { source: 'demo' }));
      expect(hit.status).toBe(202);
      const [delivery] = await holder.waitForDeliveries(1, 60_000);
      expect(delivery).toMatchObject({ seq: hit.body.seq, subject: 'events.demo.zz.hit' });
    } finally {
      holder.close();
    }
  });
});
