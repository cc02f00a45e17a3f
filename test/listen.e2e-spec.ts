/**
 * Issue "Outbound webhooks", the developer loop: `npm run listen` (scripts/listen.mjs, run as a child process as
 * users run it) reads a gateway's SSE stream and POSTs each event to a local receiver. The receiver here checks
 * every request with the official `standardwebhooks` library and the secret the listener printed. Covered:
 * once and in order, a receiver down for a moment, a POST that keeps failing, a gateway killed mid-stream (resume
 * by cursor), Ctrl-C's resume cursor, gap notices and the gateway's refusals. Run on both event stores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, expect, it, jest } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { waitFor } from './harness/wait.js';
import { describeEachStore } from './support/backends.js';
import { publishBatch, subscriberAuth, subscriberToken, type PublishResult } from './support/clients.js';
import { uniqueStreamName } from './support/config.js';
import { GatewayProcess, startGateway, type RunningGateway } from './support/gateway.js';

// The project-level testTimeout does not reach tests in ESM mode; set it here.
jest.setTimeout(90_000);

const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

const fileConfig = (streamName: string) => ({ stream: { name: streamName }, auth: subscriberAuth() });

/** One request as the receiver got it: the raw body and headers, before any checking. */
interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A local webhook receiver on 127.0.0.1. `answer` decides each response (a status, or a promise of one: a held
 * request); it can be stopped and started again on the same port (a receiver that is down for a moment).
 */
class Receiver {
  readonly requests: Received[] = [];
  answer: (req: Received) => number | Promise<number> = () => 200;
  private server?: Server;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const received = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.requests.push(received);
        void Promise.resolve(this.answer(received)).then((status) => res.writeHead(status).end('ok'));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  /** Stops listening and cuts kept-alive connections: the next POST is refused. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** webhook-ids in arrival order. */
  ids(): string[] {
    return this.requests.map((r) => String(r.headers['webhook-id']));
  }
}

/** `node scripts/listen.mjs …` with its stdout lines and stderr text. */
class Listen {
  readonly lines: string[] = [];
  stderr = '';
  private stdoutRest = '';
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      const parts = (this.stdoutRest + d).split('\n');
      this.stdoutRest = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    child.stderr?.on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => child.once('close', (code) => resolve(code)));
  }

  static start(args: string[]): Listen {
    return new Listen(
      spawn(process.execPath, ['scripts/listen.mjs', ...args], {
        env: { PATH: process.env.PATH ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
  }

  async waitForStderr(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpExecArray> {
    await waitFor(() => pattern.test(this.stderr) || this.child.exitCode !== null, {
      timeoutMs,
      message: `listen to print ${pattern} (stderr so far:\n${this.stderr})`,
    });
    const m = pattern.exec(this.stderr);
    if (!m) throw new Error(`listen exited (${this.child.exitCode}) without printing ${pattern}:\n${this.stderr}`);
    return m;
  }

  /** The secret printed at start. */
  async secret(): Promise<string> {
    return (await this.waitForStderr(/signing secret is (whsec_\S+)/))[1];
  }

  /** Resolves once the stream is open (the gateway's `ready` frame was read). */
  async ready(): Promise<void> {
    await this.waitForStderr(/stream starts after cursor/);
  }

  /** Sends `sig` and resolves with the exit code. */
  async stop(sig: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
    return this.exited;
  }

  exit(): Promise<number | null> {
    return this.exited;
  }
}

/** Checks what the receiver got against what was published: same events, same order, each verified. */
function expectDelivered(received: Received[], published: PublishResult[], secret: string): void {
  const wh = new Webhook(secret);
  expect(received.map((r) => r.headers['webhook-id'])).toEqual(published.map((p) => p.id));
  received.forEach((r, i) => {
    // Throws (failing the test) unless the signature is valid for this body, id and timestamp.
    const envelope = wh.verify(r.body, r.headers as Record<string, string>) as Record<string, unknown>;
    expect(envelope.id).toBe(published[i].id);
    expect(envelope.specversion).toBe('1.0');
    expect(r.headers['hookstream-cursor']).toBe(published[i].cursor);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['user-agent']).toBe(`Hookstream-listen/${VERSION}`);
  });
}

const acme = (tag: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({ subject: `events.acme.${tag}.n${i}`, data: { tag, i } }));

describeEachStore('npm run listen', (backend) => {
  let gw: RunningGateway;
  let stream: string;
  let token: string;
  const listeners: Listen[] = [];
  const receivers: Receiver[] = [];
  const gateways: GatewayProcess[] = [];

  const listen = (args: string[]) => {
    const l = Listen.start(args);
    listeners.push(l);
    return l;
  };
  const receiver = async () => {
    const r = await new Receiver().start();
    receivers.push(r);
    return r;
  };

  beforeAll(async () => {
    await backend.setup();
    stream = uniqueStreamName('LISTEN');
    gw = await startGateway(backend.configFor(fileConfig(stream)));
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
    token = await subscriberToken(['events.acme.>']);
  }, 30_000);

  afterEach(async () => {
    await Promise.all(listeners.splice(0).map((l) => l.stop('SIGKILL')));
    await Promise.all(receivers.splice(0).map((r) => r.stop()));
    await Promise.all(gateways.splice(0).map((g) => g.dispose()));
  });

  afterAll(async () => {
    await gw?.close();
    await backend.teardown();
  }, 30_000);

  it('forwards each matching event once, in order, verifiable with standardwebhooks; Ctrl-C prints the cursor to resume from', async () => {
    const r = await receiver();
    const l = listen(['--forward-to', r.url, '--subject', 'events.acme.>', '--url', gw.url, '--token', token]);
    const secret = await l.secret();
    await l.ready();

    // Interleaved with events outside the pattern, which must not be forwarded.
    const items = acme('first', 20).flatMap((item, i) => [item, { subject: `events.other.n${i}`, data: { i } }]);
    const results = await publishBatch(gw.url, items);
    const published = results.filter((_, i) => i % 2 === 0);
    await waitFor(() => r.requests.length >= 20 && l.lines.length >= 20, { message: '20 forwarded events' });

    expectDelivered(r.requests, published, secret);
    expect(r.requests.every((q) => q.headers['hookstream-attempt'] === '1')).toBe(true);
    published.forEach((p, i) => {
      expect(l.lines[i]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}\S+ {2}\S+ {2}200 {2}\d+ ms$/);
      expect(l.lines[i].split('  ').slice(1, 4)).toEqual([`events.acme.first.n${i}`, p.id, '200']);
    });

    expect(await l.stop('SIGINT')).toBe(0);
    const resume = /Resume with --from (\S+)/.exec(l.stderr)?.[1];
    expect(resume).toBe(published.at(-1)?.cursor);
    expect(r.requests).toHaveLength(20);

    // Stored while nothing listened; a new run from the printed cursor gets exactly these, with --secret kept.
    const later = await publishBatch(gw.url, acme('later', 5));
    const again = listen(
      ['--forward-to', r.url, '--subject', 'events.acme.>', '--url', gw.url, '--token', token].concat([
        '--from',
        resume ?? '',
        '--secret',
        secret,
      ]),
    );
    await waitFor(() => r.requests.length >= 25, { message: '5 events after the resume cursor' });
    await again.ready();
    expectDelivered(r.requests.slice(20), later, secret);
    expect(new Set(r.ids()).size).toBe(25);
  });

  it('a receiver that is down for a moment gets the event after retries, and the events behind it follow in order', async () => {
    const r = await receiver();
    const l = listen(
      ['--forward-to', r.url, '--url', gw.url, '--token', token, '--subject', 'events.acme.>'].concat([
        '--retries',
        '6',
      ]),
    );
    const secret = await l.secret();
    await l.ready();

    await r.stop();
    const published = await publishBatch(gw.url, acme('down', 3));
    await l.waitForStderr(new RegExp(`${published[0].id}: attempt 1 failed`));
    await r.start(); // the same port again
    await waitFor(() => r.requests.length >= 3 && l.lines.length >= 3, { message: 'the 3 events after the outage' });

    expectDelivered(r.requests, published, secret);
    expect(Number(r.requests[0].headers['hookstream-attempt'])).toBeGreaterThan(1);
    expect(r.requests.slice(1).map((q) => q.headers['hookstream-attempt'])).toEqual(['1', '1']);
    expect(l.lines[0]).toMatch(/ {2}200 {2}\d+ ms \(attempt \d+\)$/);
  });

  it('reports an event whose POST keeps failing after its retries, then goes on with the next one', async () => {
    const r = await receiver();
    const [bad, good] = ['events.acme.fail.bad', 'events.acme.fail.good'];
    r.answer = (q) => ((JSON.parse(q.body) as { data: { which: string } }).data.which === 'bad' ? 500 : 200);
    const l = listen(
      ['--forward-to', r.url, '--url', gw.url, '--token', token, '--subject', 'events.acme.fail.>'].concat([
        '--retries',
        '1',
      ]),
    );
    await l.ready();
    const published = await publishBatch(gw.url, [
      { subject: bad, data: { which: 'bad' } },
      { subject: good, data: { which: 'good' } },
    ]);
    await waitFor(() => l.lines.length >= 2, { message: 'two lines' });

    expect(r.ids()).toEqual([published[0].id, published[0].id, published[1].id]);
    expect(r.requests.map((q) => q.headers['hookstream-attempt'])).toEqual(['1', '2', '1']);
    expect(l.lines[0]).toContain(`${bad}  ${published[0].id}  failed: 500 after 2 attempts`);
    expect(l.lines[1]).toContain(`${good}  ${published[1].id}  200`);
  });

  it('a gateway killed mid-stream and restarted loses nothing: the listener resumes by cursor', async () => {
    // JetStream: the suite's stream (one stream owns `events.>` on a server); embedded: a data directory of its own.
    const gwp = await GatewayProcess.start(fileConfig(stream), backend.processEnv());
    gateways.push(gwp);
    const gatewayReady = (what: string) =>
      waitFor(async () => (await fetch(`${gwp.url}/readyz`)).status === 200, {
        timeoutMs: 20_000,
        message: what,
      }).catch((err: Error) => {
        throw new Error(`${err.message}; gateway output:\n${gwp.output.slice(-3000)}`);
      });
    await gatewayReady('gateway ready');
    const r = await receiver();
    // The 10th request is held until the gateway has been killed and is back: the listener is mid-stream.
    let release: () => void = () => undefined;
    const held = new Promise<number>((resolve) => (release = () => resolve(200)));
    r.answer = () => (r.requests.length === 10 ? held : 200);
    const l = listen(['--forward-to', r.url, '--url', gwp.url, '--token', token, '--subject', 'events.acme.>']);
    const secret = await l.secret();
    await l.ready();

    const before = await publishBatch(gwp.url, acme('before', 30));
    await waitFor(() => r.requests.length >= 10, { message: 'the 10th request' });
    await gwp.restart(); // SIGKILL, then the same command on the same port and store
    await gatewayReady('gateway ready again');
    // Stored while the listener is still held on its old, dead stream: only a resume by cursor finds these.
    const after = await publishBatch(gwp.url, acme('after', 10));
    release();
    await l.waitForStderr(/reconnecting/);
    await waitFor(() => r.requests.length >= 40, { message: 'all 40 events', timeoutMs: 30_000 });

    expectDelivered(r.requests, [...before, ...after], secret);
    expect(new Set(r.ids()).size).toBe(40);
  });

  it('prints a gap notice when the events after its cursor are gone, then forwards from the oldest stored one', async () => {
    const r = await receiver();
    const old = await publishBatch(gw.url, acme('gone', 2));
    await backend.purge(gw, stream);
    const kept = await publishBatch(gw.url, acme('kept', 2));
    const l = listen(
      ['--forward-to', r.url, '--url', gw.url, '--token', token, '--subject', 'events.acme.>'].concat([
        '--from',
        old[0].cursor,
      ]),
    );
    const secret = await l.secret();
    await l.waitForStderr(new RegExp(`gap: the events after ${old[0].cursor} are no longer stored`));
    await waitFor(() => r.requests.length >= 2, { message: 'the 2 events stored after the purge' });
    expectDelivered(r.requests, kept, secret);
  });

  it('ends with exit code 2 and the error code when the gateway refuses the stream', async () => {
    const r = await receiver();
    const outside = listen(['--forward-to', r.url, '--url', gw.url, '--token', token, '--subject', 'events.>']);
    expect(await outside.exit()).toBe(2);
    expect(outside.stderr).toMatch(/gateway answered 403 \(forbidden: /);

    const noToken = listen(['--forward-to', r.url, '--url', gw.url, '--subject', 'events.acme.>']);
    expect(await noToken.exit()).toBe(2);
    expect(noToken.stderr).toMatch(/gateway answered 401 \(unauthorized: /);

    const badCursor = listen(
      ['--forward-to', r.url, '--url', gw.url, '--token', token, '--from', 'not-a-cursor'].concat([
        '--subject',
        'events.acme.>',
      ]),
    );
    expect(await badCursor.exit()).toBe(2);
    expect(badCursor.stderr).toMatch(/gateway answered 400 \(invalid_cursor: /);
    expect(r.requests).toHaveLength(0);
  });
});
