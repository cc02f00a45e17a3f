/**
 * The console's Overview tab in a real Chromium (Debian's, driven by playwright-core) against a gateway on a real
 * nats-server, while load runs: events published over `/v1/events` and signed webhooks, delivered to Socket.IO and
 * SSE clients. The charts move while the load runs, come back to 0 after it, and what they show is what
 * `GET /v1/stats` says: the same clients, the same totals once the load has stopped. With HOOKSTREAM_SCREENSHOT=1
 * it also writes docs/console-overview.png.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Socket } from 'socket.io-client';
import type { StatsBody } from '../src/protocol/stats.js';
import { waitFor } from './lib/wait.mjs';
import { CHROMIUM, describeWithBrowser, LAUNCH_ARGS } from './support/browser.js';
import {
  connectSocket,
  LoadGenerator,
  mustSubscribe,
  PUBLISH_KEY,
  SocketCollector,
  SseReader,
  streamUrl,
} from './support/clients.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { NatsServerProcess } from './support/nats-server.js';
import { E2E_SOURCES, post, standardWebhook } from './support/signers.js';

jest.setTimeout(90_000);

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SUBJECT = 'events.load.tick';

/** What one legend item of a chart shows: its latest value and, for counters, the total it was derived from. */
interface Shown {
  value: number | null;
  total: number | null;
}

async function shown(page: Page, chart: string, series: string): Promise<Shown | undefined> {
  const li = page.locator(`#chart-${chart} li[data-series="${series}"]`);
  if ((await li.count()) === 0) return undefined;
  const num = (v: string | null) => (v === null || v === '' ? null : Number(v));
  return { value: num(await li.getAttribute('data-value')), total: num(await li.getAttribute('data-total')) };
}

const points = (page: Page, chart: string, series: string): Promise<string | null> =>
  page.getAttribute(`#chart-${chart} polyline[data-series="${series}"]`, 'points');

const samples = async (page: Page): Promise<number> =>
  Number((await page.getAttribute('body', 'data-overview-samples')) ?? '0');

describeWithBrowser('console Overview tab in Chromium', () => {
  let nats: NatsServerProcess;
  let browser: Browser;
  let gw: RunningGateway;

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    const file = {
      stream: { name: uniqueStreamName('OVERVIEW') },
      sources: E2E_SOURCES,
      auth: {
        anonymous: { subscribe: ['events.>'] },
        apiKeys: [{ id: 'publisher', key: PUBLISH_KEY, publish: ['events.>'], subscribe: ['events.>'] }],
      },
    };
    [browser, gw] = await Promise.all([
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS }),
      startGateway(testConfig({ natsUrl: nats.url, file })),
    ]);
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await nats?.stop();
  });

  const stats = async (): Promise<StatsBody> => {
    const res = await fetch(`${gw.url}/v1/stats`, { headers: { authorization: `Bearer ${PUBLISH_KEY}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as StatsBody;
  };

  it('draws ingest, deliveries, clients and lag moving while load runs, matching GET /v1/stats', async () => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const sockets: Socket[] = [];
    const streams: SseReader[] = [];
    let load: LoadGenerator | undefined;
    try {
      const page = await context.newPage();
      const foreign: string[] = [];
      const problems: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(`${gw.url}/`) && !r.url().startsWith('data:')) foreign.push(r.url());
      });
      page.on('pageerror', (e) => problems.push(String(e)));

      // Without a key the tab says one is needed.
      await page.goto(`${gw.url}/console#/overview`);
      await page.waitForSelector('body[data-view="overview"][data-overview="needs-key"]', { timeout: 15_000 });
      expect(await page.textContent('#overview-message')).toMatch(/needs an API key/);

      // A token that is not an API key: the endpoint's refusal is shown.
      await page.fill('#token', 'not-an-api-key');
      await page.press('#token', 'Enter');
      await page.waitForSelector('body[data-overview="error"]', { timeout: 10_000 });
      expect(await page.textContent('#overview-message')).toMatch(/not an accepted API key \(unauthorized: /);

      // Enter in Token reconnects the console with the key and reads the stats with it.
      await page.fill('#token', PUBLISH_KEY);
      await page.press('#token', 'Enter');
      await page.waitForSelector('body[data-overview="live"][data-subscription="ready"]', { timeout: 15_000 });

      // A few clients: three over Socket.IO, two over SSE, besides the console's own connection.
      const collectors: { c: SocketCollector; id: string }[] = [];
      for (let i = 0; i < 3; i++) {
        const socket = await connectSocket(gw.url, PUBLISH_KEY);
        sockets.push(socket);
        collectors.push({
          c: new SocketCollector(socket),
          id: (await mustSubscribe(socket, { subjects: [SUBJECT] })).id,
        });
      }
      for (let i = 0; i < 2; i++) {
        const sse = await SseReader.open(streamUrl(gw.url, { subject: SUBJECT }), { token: PUBLISH_KEY });
        streams.push(sse);
        await waitFor(() => sse.frames.some((f) => f.event === 'ready'), { message: 'SSE subscription ready' });
      }
      // The drawn gauges are what the endpoint says.
      await waitFor(
        async () => {
          const s = await stats();
          const [io, sse] = [await shown(page, 'clients', 'socketio'), await shown(page, 'clients', 'sse')];
          return s.clients.socketio === 4 && s.clients.sse === 2 && io?.value === 4 && sse?.value === 2;
        },
        { timeoutMs: 10_000, message: 'clients drawn as GET /v1/stats counts them (4 Socket.IO, 2 SSE)' },
      );

      load = new LoadGenerator({
        urls: [gw.url],
        ratePerSecond: 40,
        item: (i) => ({ subject: SUBJECT, id: `load-${i}`, data: { i } }),
      });
      const webhooks: number[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await post(gw.url, standardWebhook({ type: 'order.created', data: { i } }));
        expect(res.status).toBe(202);
        webhooks.push(res.body.seq as number);
      }

      // The lines move while the load runs: rates above 0, the polyline redrawn sample after sample.
      await waitFor(async () => ((await shown(page, 'deliveries', 'socketio'))?.value ?? 0) > 0, {
        timeoutMs: 10_000,
        message: 'a Socket.IO delivery rate above 0',
      });
      const drawnBefore = await points(page, 'deliveries', 'socketio');
      const at = await samples(page);
      await waitFor(async () => (await samples(page)) >= at + 2, { message: 'two more samples drawn' });
      expect(await points(page, 'deliveries', 'socketio')).not.toBe(drawnBefore);
      await waitFor(
        async () =>
          ((await shown(page, 'deliveries', 'sse'))?.value ?? 0) > 0 &&
          ((await shown(page, 'ingest', 'v1/accepted'))?.value ?? 0) > 0 &&
          (await shown(page, 'lag', 'p99'))?.value != null,
        { timeoutMs: 10_000, message: 'SSE and ingest rates above 0, a lag drawn' },
      );
      expect(await shown(page, 'ingest', 'acme/accepted')).toBeDefined();
      if (process.env.HOOKSTREAM_SCREENSHOT === '1') {
        // A few seconds of lines for the picture in docs/operations.md.
        const shot = (await samples(page)) + 4;
        await waitFor(async () => (await samples(page)) >= shot, { message: 'four more samples for the screenshot' });
        mkdirSync(join(ROOT, 'docs'), { recursive: true });
        await page.screenshot({ path: join(ROOT, 'docs', 'console-overview.png') });
      }
      const lag = { p50: await shown(page, 'lag', 'p50'), p99: await shown(page, 'lag', 'p99') };
      if (lag.p50?.value != null) expect(lag.p50.value).toBeLessThanOrEqual(lag.p99!.value!);

      const published = await load.stop();
      load = undefined;
      const n = published.length;
      for (const { c, id } of collectors) await c.waitForEvents(id, n);
      const sseDeliveries = (r: SseReader) => r.frames.filter((f) => f.event === undefined && f.data).length;
      await waitFor(() => streams.every((r) => sseDeliveries(r) >= n), { message: 'every SSE delivery' });

      // Once nothing moves, the drawn totals are the endpoint's, and the rates come back to 0.
      await waitFor(
        async () => {
          const s = await stats();
          const ingest = await shown(page, 'ingest', 'v1/accepted');
          const io = await shown(page, 'deliveries', 'socketio');
          const sse = await shown(page, 'deliveries', 'sse');
          const accepted = s.ingest.find((i) => i.source === 'v1' && i.outcome === 'accepted')?.total;
          return (
            ingest?.total === accepted &&
            io?.total === s.deliveries.socketio &&
            sse?.total === s.deliveries.sse &&
            ingest?.value === 0 &&
            io?.value === 0
          );
        },
        { timeoutMs: 10_000, message: 'drawn totals equal to GET /v1/stats, rates back to 0' },
      );
      const s = await stats();
      expect(s.ingest.find((i) => i.source === 'v1' && i.outcome === 'accepted')?.total).toBe(n);
      // Each event went to 4 Socket.IO clients (the console too) and 2 SSE streams; the webhooks to the console only.
      expect(s.deliveries.socketio).toBe(4 * n + webhooks.length);
      expect(s.deliveries.sse).toBe(2 * n);
      expect((await shown(page, 'replays', 'running'))?.value).toBe(s.replays.running);

      expect(foreign).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await load?.stop();
      for (const s of sockets) s.close();
      for (const r of streams) r.close();
      await context.close();
    }
  });
});
