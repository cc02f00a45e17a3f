/**
 * The browser SDK and the console in a real Chromium (Debian's, driven by playwright-core), against gateways on
 * a real nats-server: the console shows a webhook live; a plain page on another origin keeps every event exactly
 * once, in order, while the gateway process is killed and restarted; a reload resumes from the cursor kept under
 * persistKey; event rows show their schema version and the Schemas view browses the registry with the API key typed
 * into the console. With HOOKSTREAM_SCREENSHOT=1 the console test also writes docs/console.png.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { NatsServerProcess } from './harness/nats-server.js';
import { waitFor } from './harness/wait.js';
import { CHROMIUM, describeWithBrowser, LAUNCH_ARGS } from './support/browser.js';
import { expectStrictlyIncreasing } from './support/clients.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { GatewayProcess, startGateway, type RunningGateway } from './support/gateway.js';
import { ACME_SECRET, E2E_SOURCES, githubWebhook, post, standardWebhook, stripeWebhook } from './support/signers.js';

jest.setTimeout(90_000);

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BILLING_KEY = 'billing-console-key-0123456789';
// Another origin than the gateway's: the console must read the registry from its own origin, not from dataschema.
const PUBLIC_URL = 'https://hooks.example.test';

/** Serves test/fixtures/*.html on its own origin, so pages import the SDK cross-origin as users' pages do. */
async function serveFixtures(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const name = new URL(req.url ?? '/', 'http://fixture').pathname.slice(1);
    if (!/^[a-z0-9-]+\.html$/.test(name)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = readFileSync(join(ROOT, 'test', 'fixtures', name));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

/** What the fixture page keeps on window.hs. */
interface PageState {
  received: { seq: number; id: string; cursor: string; subject: string }[];
  statuses: string[];
  gaps: unknown[];
  errors: string[];
  ready: boolean;
}

const pageState = (page: Page): Promise<PageState> =>
  page.evaluate(() => {
    const hs = (globalThis as unknown as { hs: PageState & { cursor: unknown } }).hs;
    return { received: hs.received, statuses: hs.statuses, gaps: hs.gaps, errors: hs.errors, ready: hs.ready };
  });

async function waitForReceived(page: Page, n: number, timeoutMs = 15_000): Promise<void> {
  await page.waitForFunction(
    (count) => ((globalThis as unknown as { hs?: PageState }).hs?.received.length ?? 0) >= count,
    n,
    { timeout: timeoutMs, polling: 50 },
  );
}

async function waitForPageReady(page: Page): Promise<void> {
  await page.waitForFunction(() => (globalThis as unknown as { hs?: PageState }).hs?.ready === true, undefined, {
    timeout: 15_000,
    polling: 50,
  });
}

/**
 * Sends Standard Webhooks deliveries one after another, each retried with the same id until the gateway
 * acknowledges it (202, or 200 duplicate after a 202 that was lost), as a provider does. Paced, not a wait.
 */
class WebhookPump {
  readonly acked: { id: string; seq?: number }[] = [];
  failures = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly url: string,
    private readonly type: string,
    private readonly prefix: string,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    for (let i = 0; !this.stopped; i++) {
      await this.deliver(`${this.prefix}-${i}`, i);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  private async deliver(id: string, i: number): Promise<void> {
    for (;;) {
      try {
        const res = await post(this.url, standardWebhook({ type: this.type, data: { i } }, { id }));
        if (res.status === 202 || (res.status === 200 && res.body?.status === 'duplicate')) {
          this.acked.push({ id, seq: res.body.seq });
          return;
        }
      } catch {
        // the gateway is down: retry, as a provider would
      }
      this.failures++;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops after the delivery in flight has been acknowledged. */
  async stop(): Promise<{ id: string; seq?: number }[]> {
    this.stopped = true;
    await this.done;
    return this.acked;
  }
}

describeWithBrowser('browser SDK and console in Chromium', () => {
  let nats: NatsServerProcess;
  let browser: Browser;
  let fixtures: { url: string; server: Server };
  let consoleGw: RunningGateway;
  let processGw: GatewayProcess;

  const file = (stream: string) => ({
    stream: { name: stream },
    // The console's demo button signs only for a source dedicated to demos.
    sources: [
      ...E2E_SOURCES,
      { name: 'console-demo', verifier: 'standard-webhooks', secrets: [ACME_SECRET], demo: true },
    ],
    auth: {
      anonymous: { subscribe: ['events.>'] },
      apiKeys: [{ id: 'billing', key: BILLING_KEY, publish: ['events.billing.>'] }],
    },
    console: { demoSource: 'console-demo' },
    server: { publicUrl: PUBLIC_URL },
  });

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    // Two replicas of one stream (two streams on `events.>` would overlap on one server).
    const stream = uniqueStreamName('BROWSER');
    [browser, fixtures, consoleGw] = await Promise.all([
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS }),
      serveFixtures(),
      startGateway(testConfig({ natsUrl: nats.url, file: file(stream) })),
    ]);
    processGw = await GatewayProcess.start(file(stream), { NATS_URL: nats.url });
    await waitFor(async () => (await fetch(`${consoleGw.url}/readyz`)).status === 200, {
      message: 'console gateway ready',
    });
    await waitFor(async () => (await fetch(`${processGw.url}/readyz`)).status === 200, {
      message: 'gateway process ready',
    });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (fixtures?.server ? fixtures.server.close(() => resolve()) : resolve()));
    await consoleGw?.close();
    await processGw?.dispose();
    await nats?.stop();
  });

  const newContext = (): Promise<BrowserContext> => browser.newContext({ viewport: { width: 1440, height: 900 } });

  it('the console subscribes on load and shows a webhook POSTed over HTTP, with its subject and JSON', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const foreign: string[] = [];
      const problems: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(`${consoleGw.url}/`) && !r.url().startsWith('data:')) foreign.push(r.url());
      });
      page.on('pageerror', (e) => problems.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });

      await page.goto(`${consoleGw.url}/console`);
      await page.waitForSelector('body[data-subscription="ready"][data-status="live"]', { timeout: 15_000 });
      expect(await page.inputValue('#patterns')).toBe('events.>');

      const res = await post(consoleGw.url, standardWebhook({ type: 'order.created', data: { order: 42 } }));
      expect(res.status).toBe(202);
      const row = page.locator(`tr.event[data-seq="${res.body.seq}"]`);
      // Waits on the DOM: the row appears as soon as the delivery does.
      await row.waitFor({ timeout: 5_000 });
      expect(await row.locator('td.subject').textContent()).toBe('events.acme.order.created');
      expect(await row.locator('td.type').textContent()).toBe('order.created');
      expect(await page.textContent('#count-events')).toBe('1');

      await row.click();
      const shown = JSON.parse((await page.textContent('#detail-json')) ?? '') as Record<string, unknown>;
      expect(shown).toMatchObject({
        seq: res.body.seq,
        cursor: res.body.cursor,
        subject: 'events.acme.order.created',
        event: { id: res.body.id, type: 'order.created', data: { type: 'order.created', data: { order: 42 } } },
      });

      // "Send test webhook" signs on the server and ingests through the normal path.
      await page.click('#demo');
      await page.waitForSelector('tr.event[data-subject="events.console-demo.console.test"]', { timeout: 5_000 });
      expect(await page.textContent('#notice')).toMatch(
        /^Sent: events\.console-demo\.console\.test accepted as seq \d+/,
      );

      if (process.env.HOOKSTREAM_SCREENSHOT === '1') {
        const more = [
          stripeWebhook({
            id: 'evt_shot_1',
            object: 'event',
            type: 'invoice.payment_succeeded',
            data: { object: { id: 'in_1', amount_paid: 4200 } },
          }),
          await githubWebhook('issues', { action: 'opened', issue: { number: 7, title: 'Dark mode' } }),
          standardWebhook({ type: 'order.shipped', data: { order: 42, carrier: 'DHL' } }),
          standardWebhook({ type: 'customer.updated', data: { customer: 'cus_9', plan: 'pro' } }),
        ];
        for (const req of more) expect((await post(consoleGw.url, req)).status).toBe(202);
        await page.locator('tr.event').nth(5).waitFor({ timeout: 5_000 });
        await page.locator('tr.event[data-subject="events.stripe.invoice.payment_succeeded"]').click();
        mkdirSync(join(ROOT, 'docs'), { recursive: true });
        await page.screenshot({ path: join(ROOT, 'docs', 'console.png') });
      }

      expect(foreign).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the console shows the schema version an event was validated against, and browses the registry with the typed API key', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const foreign: string[] = [];
      const problems: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(`${consoleGw.url}/`) && !r.url().startsWith('data:')) foreign.push(r.url());
      });
      page.on('pageerror', (e) => problems.push(String(e)));
      const api = async (path: string, body: unknown) => {
        const res = await fetch(`${consoleGw.url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${BILLING_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as any };
      };

      await page.goto(`${consoleGw.url}/console?subject=events.billing.>`);
      await page.waitForSelector('body[data-subscription="ready"][data-status="live"]', { timeout: 15_000 });

      const subject = 'events.billing.invoice.created';
      const v1 = {
        type: 'object',
        properties: { id: { type: 'string' }, total: { type: 'integer' } },
        required: ['id'],
      };
      const v2 = {
        type: 'object',
        properties: { id: { type: 'string' }, total: { type: 'number' } },
        required: ['id'],
      };
      expect((await api(`/v1/schemas/${subject}/versions`, { schema: v1 })).body).toMatchObject({ version: 1 });
      expect((await api(`/v1/schemas/${subject}/versions`, { schema: v2 })).body).toMatchObject({ version: 2 });
      // total 2.5 is valid under v2 only; a subject without a schema gets no dataschema.
      const checked = await api('/v1/events', { subject, data: { id: 'inv-1', total: 2.5 } });
      expect(checked.status).toBe(202);
      const unchecked = await api('/v1/events', { subject: 'events.billing.note.added', data: { text: 'hi' } });
      expect(unchecked.status).toBe(202);

      const row = page.locator(`tr.event[data-seq="${checked.body.results[0].seq}"]`);
      await row.waitFor({ timeout: 5_000 });
      expect(await row.locator('td.schema').textContent()).toBe('v2');
      expect(await row.locator('td.schema a').getAttribute('href')).toBe(`#/schemas/${subject}/versions/2`);
      const plain = page.locator(`tr.event[data-seq="${unchecked.body.results[0].seq}"]`);
      await plain.waitFor({ timeout: 5_000 });
      expect(await plain.locator('td.schema').textContent()).toBe('');

      // Without a key the view says one is needed, and reads nothing.
      await page.click('#tab-schemas');
      await page.waitForSelector('body[data-view="schemas"][data-schemas="needs-key"]');
      expect(await page.textContent('#schemas-message')).toMatch(/needs an API key/);
      expect(await page.locator('#schema-subjects tr').count()).toBe(0);

      // A token that is not an API key: the registry's refusal is shown.
      await page.fill('#token', 'not-a-key');
      await page.click('#schemas-refresh');
      await page.waitForSelector('body[data-schemas="error"]');
      expect(await page.textContent('#schemas-message')).toMatch(/not an accepted API key \(unauthorized: /);

      // With the key, the event's version link opens that version.
      await page.fill('#token', BILLING_KEY);
      await page.click('#tab-events');
      await row.locator('td.schema a').click();
      await page.waitForSelector('body[data-view="schemas"][data-schemas="ready"]');
      const listed = page.locator(`#schema-subjects tr[data-subject="${subject}"]`);
      expect(await listed.locator('td').allTextContents()).toEqual([subject, 'v2', 'backward', 'default', 'api']);
      expect(await listed.getAttribute('class')).toContain('selected');
      expect(await page.locator('#schema-versions li').allTextContents()).toEqual(['v2', 'v1']);
      expect(await page.getAttribute('#schema-versions li.selected', 'data-version')).toBe('2');
      expect(await page.textContent('#schema-title')).toMatch(new RegExp(`^${subject} v2 · registered `));
      expect(JSON.parse((await page.textContent('#schema-json')) ?? '')).toEqual(v2);
      expect(await page.textContent('#schema-json')).toBe(JSON.stringify(v2, null, 2));

      await page.click('#schema-versions li[data-version="1"] a');
      await page.waitForSelector('#schema-versions li.selected[data-version="1"]');
      await page.waitForSelector('body[data-schemas="ready"]');
      expect(JSON.parse((await page.textContent('#schema-json')) ?? '')).toEqual(v1);

      expect(foreign).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the console over SSE pauses, keeps its cursor, and on resume shows what arrived meanwhile, none twice', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      // The browser's own EventSource this time.
      await page.goto(`${consoleGw.url}/console?subject=events.acme.pause.>&transport=sse`);
      await page.waitForSelector('body[data-subscription="ready"][data-status="live"]', { timeout: 15_000 });
      expect(await page.inputValue('#transport')).toBe('sse');
      expect(await page.textContent('#sub-patterns')).toBe('events.acme.pause.>');
      await post(consoleGw.url, standardWebhook({ type: 'order.created' })); // outside the pattern

      const send = async (type: string) => {
        const res = await post(consoleGw.url, standardWebhook({ type: `pause.${type}` }));
        expect(res.status).toBe(202);
        return res.body.seq as number;
      };
      const first = await send('one');
      await page.waitForSelector(`tr.event[data-seq="${first}"]`, { timeout: 5_000 });
      await page.click('#pause');
      await page.waitForSelector('body[data-subscription="paused"][data-status="paused"]');
      const meanwhile = [await send('two'), await send('three')];
      await page.click('#pause'); // now labelled Resume
      await page.waitForSelector(`tr.event[data-seq="${meanwhile[1]}"]`, { timeout: 5_000 });
      const seqs = await Promise.all(
        (await page.locator('tr.event').all()).map(async (row) => Number(await row.getAttribute('data-seq'))),
      );
      expect(seqs).toEqual([meanwhile[1], meanwhile[0], first]); // newest first, each once
      expect(await page.textContent('#count-events')).toBe('3');
    } finally {
      await context.close();
    }
  });

  it('a page on another origin keeps every event exactly once, in order, while the gateway process is killed and restarted', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const gw = encodeURIComponent(processGw.url);
      await page.goto(`${fixtures.url}/sdk-page.html?gw=${gw}&subject=events.acme.restart.>`);
      await waitForPageReady(page);

      const pump = new WebhookPump(processGw.url, 'restart.tick', 'restart');
      await waitForReceived(page, 5);
      await processGw.restart(); // SIGKILL, then the same config on the same port
      const ackedAtRestart = pump.acked.length;
      // Events keep flowing to the page after the restart: it reconnected and resumed.
      await waitForReceived(page, ackedAtRestart + 5, 30_000);
      const acked = await pump.stop();
      await waitForReceived(page, acked.length);

      const state = await pageState(page);
      expect(state.received.map((r) => r.id)).toEqual(acked.map((a) => a.id));
      expectStrictlyIncreasing(
        state.received.map((r) => r.seq),
        'page seqs',
      );
      acked.forEach((a, i) => {
        if (a.seq !== undefined) expect(state.received[i].seq).toBe(a.seq);
      });
      expect(pump.failures).toBeGreaterThan(0); // webhooks did arrive while the gateway was down
      expect(state.statuses).toContain('reconnecting');
      expect(state.statuses[state.statuses.length - 1]).toBe('live');
      expect(state.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a reload with persistKey resumes from the stored cursor: what arrived while the page was gone, none twice', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const gw = encodeURIComponent(processGw.url);
      // from=earliest: without the stored cursor a reload would replay every event again.
      const url = `${fixtures.url}/sdk-page.html?gw=${gw}&subject=events.acme.reload.>&persist=reload-demo&from=earliest`;
      const send = async (n: number, tag: string) => {
        const out: { id: string; seq: number }[] = [];
        for (let i = 0; i < n; i++) {
          const res = await post(processGw.url, standardWebhook({ type: 'reload.tick', data: { tag, i } }));
          expect(res.status).toBe(202);
          out.push({ id: res.body.id, seq: res.body.seq });
        }
        return out;
      };

      await page.goto(url);
      await waitForPageReady(page);
      const first = await send(3, 'first');
      await waitForReceived(page, 3);
      expect((await pageState(page)).received.map((r) => r.id)).toEqual(first.map((e) => e.id));

      // A reload with nothing new: the stored cursor is used, nothing is replayed.
      await page.reload();
      await waitForPageReady(page);
      const marker = await send(1, 'marker');
      await waitForReceived(page, 1);
      expect((await pageState(page)).received.map((r) => r.id)).toEqual(marker.map((e) => e.id));

      // The page goes away; events arrive; it comes back and gets exactly those.
      await page.goto('about:blank');
      const whileGone = await send(4, 'gone');
      await page.goto(url);
      await waitForPageReady(page);
      await waitForReceived(page, 4);
      const after = await send(1, 'after');
      await waitForReceived(page, 5);
      const state = await pageState(page);
      expect(state.received.map((r) => r.id)).toEqual([...whileGone, ...after].map((e) => e.id));
      expect(state.received.map((r) => r.seq)).toEqual([...whileGone, ...after].map((e) => e.seq));
      const { origins } = await context.storageState();
      const stored = origins.find((o) => o.origin === fixtures.url)?.localStorage.find((e) => e.name === 'reload-demo');
      expect(stored?.value).toBe(state.received[state.received.length - 1].cursor);
      expect(state.errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
