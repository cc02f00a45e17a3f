/**
 * Issue "Embedded single-node event store: `npm start` works with no NATS", as a user meets it: the built gateway
 * (`node dist/main.js`) started as a process, what it logs about its store, one process per DATA_DIR, and the
 * README's quick start with no NATS anywhere (config/demo.yaml, the real `scripts/send-webhook.mjs`, a Socket.IO
 * client and an SSE client).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { describeEachStore, itFor } from './support/backends.js';
import { SocketCollector, SseReader, connectSocket, mustSubscribe, streamUrl } from './support/clients.js';
import { uniqueStreamName } from './support/config.js';
import { GatewayExitError, GatewayProcess } from './support/gateway.js';
import { E2E_SOURCES, post, standardWebhook } from './support/signers.js';

jest.setTimeout(60_000);

interface LogLine {
  level: number;
  msg?: string;
  [k: string]: unknown;
}

const WARN = 40;

/** The JSON log lines a gateway process printed (pino), in order. */
function logLines(output: string): LogLine[] {
  const out: LogLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogLine);
    } catch {
      // not a log line
    }
  }
  return out;
}

const fileConfig = () => ({ stream: { name: uniqueStreamName('START') }, sources: E2E_SOURCES });

describeEachStore('gateway start-up', (backend) => {
  const procs: GatewayProcess[] = [];

  beforeAll(() => backend.setup(), 30_000);

  afterEach(async () => {
    for (const p of procs.splice(0)) await p.dispose();
  });

  afterAll(() => backend.teardown(), 30_000);

  it('logs which store is in use; only the embedded store warns, once, that it is single-node and points to NATS_URL', async () => {
    const p = await GatewayProcess.start(fileConfig(), backend.processEnv());
    procs.push(p);
    const lines = logLines(p.output);
    const listening = lines.filter((l) => l.msg === 'hookstream listening');
    expect(listening).toHaveLength(1);
    expect(listening[0]).toMatchObject({ store: backend.kind, port: p.port });
    expect(lines.filter((l) => l.msg === 'event store started')).toEqual([
      expect.objectContaining({ store: backend.kind }),
    ]);
    const singleNode = lines.filter((l) => /single-node/.test(l.msg ?? ''));
    if (backend.kind === 'embedded') {
      expect(singleNode).toHaveLength(1);
      expect(singleNode[0].level).toBe(WARN);
      expect(singleNode[0].msg).toMatch(/NATS_URL/);
    } else {
      expect(singleNode).toEqual([]);
    }
    // No demo source configured: no demo line.
    expect(lines.filter((l) => 'demoSource' in l)).toEqual([]);
  });

  itFor(
    backend,
    ['embedded'],
    'refuses a second process on the same DATA_DIR: it exits non-zero at once, saying the directory is locked',
    async () => {
      const env = backend.processEnv();
      const first = await GatewayProcess.start(fileConfig(), env);
      procs.push(first);
      const err = await GatewayProcess.start(fileConfig(), env).then(
        (second) => {
          procs.push(second);
          throw new Error('a second gateway started on the same DATA_DIR');
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GatewayExitError);
      const { code, output } = err as GatewayExitError;
      expect(code).toBe(1);
      expect(output).toContain(
        `hookstream failed to start: data directory ${env.DATA_DIR} is locked by another Hookstream process`,
      );
      expect(output).not.toContain('hookstream listening');
      // The holder is unaffected.
      const res = await post(first.url, standardWebhook({ type: 'still.here' }));
      expect(res.status).toBe(202);
    },
  );
});

describe('quick start with no NATS (README)', () => {
  let dataRoot: string;
  let gw: GatewayProcess | undefined;
  const closers: (() => void)[] = [];

  beforeAll(() => {
    dataRoot = mkdtempSync(join(tmpdir(), 'hookstream-quickstart-'));
  });

  afterAll(async () => {
    for (const close of closers.splice(0)) close();
    await gw?.dispose();
    rmSync(dataRoot, { recursive: true, force: true });
  });

  it('runs on config/demo.yaml: prints the demo source and a send command, never its secret; that command signs a webhook that reaches a Socket.IO and an SSE client', async () => {
    // What `npm start` runs, without NATS_URL (the process gets only PATH and these).
    gw = await GatewayProcess.start({}, { HOOKSTREAM_CONFIG: 'config/demo.yaml', DATA_DIR: join(dataRoot, 'data') });
    const lines = logLines(gw.output);
    expect(lines.find((l) => l.msg === 'hookstream listening')).toMatchObject({ store: 'embedded' });
    const demo = parseYaml(readFileSync('config/demo.yaml', 'utf8')) as {
      sources: { name: string; secrets: string[] }[];
    };
    const demoLines = lines.filter((l) => 'demoSource' in l);
    expect(demoLines).toEqual([
      expect.objectContaining({ demoSource: 'demo', try: `npm run send -- --source demo --url ${gw.url}` }),
    ]);
    // The command reads the secret from the config file itself: logs never carry it.
    const secret = demo.sources.find((s) => s.name === 'demo')?.secrets[0] as string;
    expect(demoLines[0]).not.toHaveProperty('secret');
    expect(gw.output).not.toContain(secret);
    expect((await fetch(`${gw.url}/console`)).status).toBe(200);

    // Anonymous clients: the demo config lets anyone read events.demo.>.
    const socket = await connectSocket(gw.url);
    closers.push(() => socket.close());
    const col = new SocketCollector(socket);
    const { id } = await mustSubscribe(socket, { subjects: ['events.demo.>'] });
    const sse = await SseReader.open(streamUrl(gw.url, { subject: 'events.demo.>' }));
    closers.push(() => sse.close());
    expect(sse.status).toBe(200);
    await sse.waitForFrames((frames) => frames.some((f) => f.event === 'ready'), 'SSE ready');

    // The printed command, run as `npm run send` runs it, from a shell that has none of the gateway's environment.
    const args = (demoLines[0].try as string).replace(/^npm run send -- /, '').split(' ');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['scripts/send-webhook.mjs', ...args, '--type', 'order.created', '--data', '{"order":42}'],
      { env: { PATH: process.env.PATH ?? '' } },
    );
    const m = /^(\d{3}) (.*)$/s.exec(stdout.trim());
    expect(m?.[1]).toBe('202');
    const accepted = JSON.parse(m?.[2] ?? '{}') as {
      status: string;
      id: string;
      subject: string;
      seq: number;
      cursor: string;
    };
    expect(accepted).toMatchObject({ status: 'accepted', subject: 'events.demo.order.created' });

    const [viaSocket] = await col.waitForEvents(id, 1);
    const [viaSse] = await sse.waitForDeliveries(1);
    for (const d of [viaSocket, viaSse]) {
      expect(d).toMatchObject({ seq: accepted.seq, cursor: accepted.cursor, subject: 'events.demo.order.created' });
      expect(d.event).toMatchObject({
        id: accepted.id,
        source: '/webhooks/demo',
        type: 'order.created',
        data: { type: 'order.created', data: { order: 42 } },
      });
    }
  });
});
