/**
 * `npm run listen`: the developer loop that reads a gateway's SSE stream and forwards each event, signed, to a local
 * receiver (verified with the official `standardwebhooks` library), and resumes by cursor after a restart.
 */
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './harness/wait.js';
import { describeEachStore } from './support/backends.js';
import { uniqueStreamName } from './support/config.js';
import type { RunningGateway } from './support/gateway.js';
import { outboundFile, publish, PUB_KEY, Receiver, startOutboundGateway } from './support/outbound.js';

jest.setTimeout(60_000);

interface Listener {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

function listen(args: string[]): Listener {
  const child = spawn(process.execPath, ['scripts/listen.mjs', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}

describeEachStore('npm run listen', (backend) => {
  let gw: RunningGateway;
  let rx: Receiver;
  const listeners: Listener[] = [];

  beforeAll(async () => {
    await backend.setup();
    rx = await Receiver.start();
    gw = await startOutboundGateway(backend.configFor(outboundFile(uniqueStreamName('LISTEN'))));
  });
  afterAll(async () => {
    for (const l of listeners) await l.stop();
    await rx?.close();
    await gw?.close();
    await backend.teardown();
  });

  it('forwards each event signed with the printed secret, and resumes after a restart by cursor', async () => {
    const first = listen([
      '--url',
      gw.url,
      '--forward-to',
      `${rx.url}/hooks`,
      '--subject',
      'events.dev.>',
      '--token',
      PUB_KEY,
    ]);
    listeners.push(first);
    await waitFor(() => /Ready; resume later with --cursor/.test(first.output()), { message: 'listen is ready' });
    const secret = /Signing secret: (whsec_\S+)/.exec(first.output())![1];
    rx.secret = secret;

    const a = await publish(gw.url, 'events.dev.a', ['dev-1', 'dev-2', 'dev-3']);
    await publish(gw.url, 'events.other.x', ['not-mine']);
    await waitFor(() => rx.received.length === 3, { message: 'three forwarded events' });
    expect(rx.ids()).toEqual(['dev-1', 'dev-2', 'dev-3']);
    expect(rx.received.every((r) => r.verified && r.path === '/hooks')).toBe(true);
    expect(rx.received.map((r) => r.cursor)).toEqual(a.map((x) => x.cursor));
    expect(JSON.parse(rx.received[0].body)).toMatchObject({ id: 'dev-1', data: { id: 'dev-1' } });

    // Stopped once it has seen the third answer: what it prints is the last cursor it forwarded.
    await waitFor(() => first.output().includes(`-> 200  cursor ${a[2].cursor}`), { message: 'the third answer' });
    await first.stop();
    expect(first.output()).toContain(`Resume with --cursor ${a[2].cursor} --secret ${secret}`);
    await publish(gw.url, 'events.dev.b', ['dev-4', 'dev-5']);

    const second = listen([
      '--url',
      gw.url,
      '--forward-to',
      `${rx.url}/hooks`,
      '--subject',
      'events.dev.>',
      '--token',
      PUB_KEY,
      '--cursor',
      a[2].cursor,
      '--secret',
      secret,
    ]);
    listeners.push(second);
    await waitFor(() => rx.received.length === 5, { message: 'the two events published while it was stopped' });
    expect(rx.ids()).toEqual(['dev-1', 'dev-2', 'dev-3', 'dev-4', 'dev-5']);
    expect(rx.received.every((r) => r.verified)).toBe(true);
  });

  it('refuses a bad --forward-to, and says why the gateway refused the stream', async () => {
    const bad = listen(['--url', gw.url, '--forward-to', 'ftp://x']);
    await waitFor(() => bad.child.exitCode !== null, { message: 'listen exits' });
    expect(bad.child.exitCode).toBe(2);
    expect(bad.output()).toMatch(/--forward-to must be an http\(s\) URL/);
    const noToken = listen(['--url', gw.url, '--forward-to', `${rx.url}/hooks`]);
    await waitFor(() => noToken.child.exitCode !== null, { message: 'listen exits' });
    expect(noToken.child.exitCode).toBe(1);
    expect(noToken.output()).toMatch(/the gateway answered 401/);
  });
});
