/**
 * The console's Endpoints view in a real Chromium (Debian's, driven by playwright-core) against a gateway on a real
 * nats-server that delivers to a real receiver on 127.0.0.1: an event that goes dead shows in the view, and the
 * Redeliver button sends it again with the same webhook-id, the new 200 showing in the attempts.
 */
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';
import { waitFor } from './lib/wait.mjs';
import { CHROMIUM, describeWithBrowser, LAUNCH_ARGS } from './support/browser.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import type { RunningGateway } from './support/gateway.js';
import { NatsServerProcess } from './support/nats-server.js';
import {
  api,
  createEndpoint,
  outboundFile,
  publish,
  Receiver,
  startOutboundGateway,
  SVC_KEY,
} from './support/outbound.js';

jest.setTimeout(90_000);

describeWithBrowser('console Endpoints view in Chromium', () => {
  let nats: NatsServerProcess;
  let browser: Browser;
  let gw: RunningGateway;
  let rx: Receiver;

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    // Two attempts 200 ms apart, then dead; anonymous subscribers so the Events view loads cleanly too.
    const file = outboundFile(uniqueStreamName('CONSOLE_EP'), { retrySchedule: ['200ms'], jitter: 0 });
    const auth = { ...(file.auth as Record<string, unknown>), anonymous: { subscribe: ['events.>'] } };
    [browser, gw, rx] = await Promise.all([
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS }),
      startOutboundGateway(testConfig({ natsUrl: nats.url, file: { ...file, auth } })),
      Receiver.start(),
    ]);
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
  });

  afterAll(async () => {
    await browser?.close();
    await rx?.close();
    await gw?.close();
    await nats?.stop();
  });

  it('lists an endpoint with its dead event, and Redeliver sends it again with the same webhook-id', async () => {
    rx.behaviour = () => ({ status: 500, body: 'broken' });
    const subject = 'events.svc.console.order';
    const ep = await createEndpoint(gw.url, rx, { patterns: [subject] });
    const [stored] = await publish(gw.url, subject, [`evt_console_${Date.now().toString(36)}`]);

    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    try {
      const page = await context.newPage();
      const foreign: string[] = [];
      const problems: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(`${gw.url}/`) && !r.url().startsWith('data:')) foreign.push(r.url());
      });
      page.on('pageerror', (e) => problems.push(String(e)));

      await page.goto(`${gw.url}/console`);
      await page.waitForSelector('body[data-subscription="ready"]', { timeout: 15_000 });

      // Without a key the view says one is needed.
      await page.click('#tab-endpoints');
      await page.waitForSelector('body[data-view="endpoints"][data-endpoints="needs-key"]');
      expect(await page.textContent('#endpoints-message')).toMatch(/needs an API key/);
      expect(await page.locator('#endpoint-rows tr').count()).toBe(0);

      await page.fill('#token', SVC_KEY);
      await page.click('#endpoints-refresh');
      const row = page.locator(`#endpoint-rows tr[data-id="${ep.id}"]`);
      await row.waitFor({ timeout: 10_000 });
      await row.locator('td.id a').click();
      await page.waitForSelector(`#endpoint-rows tr.selected[data-id="${ep.id}"]`);

      // Both attempts fail, so the event goes dead; the view re-reads on its own until it shows.
      const dead = page.locator(`#dead-rows tr[data-event-id="${stored.id}"]`);
      await dead.waitFor({ timeout: 20_000 });
      expect(await dead.locator('td').allTextContents()).toEqual([stored.id, '2', '500', '', expect.any(String)]);
      await waitFor(async () => (await row.locator('td.dead').textContent()) === '1', { message: 'dead count 1' });
      expect(await row.locator('td').allTextContents()).toEqual([ep.id, `${rx.url}/hook`, 'active', '0', '1', '–']);
      await waitFor(async () => (await page.locator('#attempt-rows tr').count()) === 2, { message: 'two attempts' });
      expect(await page.locator('#attempt-rows tr td.status').allTextContents()).toEqual(['500', '500']);
      expect(await page.locator('#attempt-rows tr td.attempt').allTextContents()).toEqual(['2', '1']);
      expect(rx.received.map((r) => r.id)).toEqual([stored.id, stored.id]);

      rx.behaviour = () => ({ status: 200, body: 'ok' });
      await page.click('#redeliver');
      await page.waitForSelector('body[data-redeliver="queued"]');
      expect(await page.textContent('#redeliver-result')).toBe('queued 1');

      await waitFor(() => rx.received.some((r) => r.status === 200), { message: 'the redelivered event' });
      expect(rx.received).toHaveLength(3);
      expect(rx.received[2]).toMatchObject({ id: stored.id, verified: true, attempt: 1, status: 200 });

      // Newest first: the 200 on top, then the two failures; the event has left the dead list.
      await page.waitForSelector('#attempt-rows tr:first-child[data-status="200"]', { timeout: 10_000 });
      expect(await page.locator('#attempt-rows tr td.status').allTextContents()).toEqual(['200', '500', '500']);
      await waitFor(async () => (await page.locator('#dead-rows tr').count()) === 0, { message: 'no dead events' });
      expect(await page.isDisabled('#redeliver')).toBe(true);
      await waitFor(async () => (await row.locator('td.last-success').textContent()) !== '–', {
        message: 'last success shown',
      });

      // A paused endpoint shows why it is disabled.
      expect((await api(gw.url, 'PATCH', `/v1/endpoints/${ep.id}`, SVC_KEY, { status: 'disabled' })).status).toBe(200);
      await waitFor(async () => (await row.locator('td.status').textContent()) === 'disabled (manual)', {
        message: 'disabled (manual)',
      });

      expect(foreign).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
