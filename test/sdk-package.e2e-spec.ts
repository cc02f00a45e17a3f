/**
 * The SDK as frontend developers get it: `npm pack` in packages/client, the tarball installed into a scratch
 * front-end project in a temp dir, that project type-checked against the installed declarations and built by
 * Vite, the built page served on its own origin and loaded in Chromium against a gateway on a real nats-server,
 * where it must receive a webhook POSTed afterwards, over both transports.
 *
 * Offline on purpose: the scratch project is installed with `npm ci --offline` from a lockfile cut out of the
 * root package-lock.json (the SDK's dependencies at the versions and places the repository pins), so every
 * tarball comes from the npm cache the root install filled; Vite and tsc are the root's own binaries. The temp
 * dir has no node_modules above it, so the page can only be built from what the tarball brought.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';
import { NatsServerProcess } from './harness/nats-server.js';
import { waitFor } from './harness/wait.js';
import { CHROMIUM, describeWithBrowser, LAUNCH_ARGS } from './support/browser.js';
import { testConfig, uniqueStreamName } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { E2E_SOURCES, post, standardWebhook } from './support/signers.js';

jest.setTimeout(180_000);

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PKG = join(ROOT, 'packages', 'client');
const run = promisify(execFile);

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

interface PackResult {
  filename: string;
  integrity: string;
  files: { path: string }[];
}

/** npm run under `npm test` inherits the root project's npm_* variables; the scratch project must not. */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_registry']);
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_') || keep.has(k.toLowerCase())),
  );
}

/**
 * The scratch project's lockfile: the tarball, and every package the SDK needs copied from the root lockfile at
 * the path where the root install put it, walking dependencies the way Node resolves them (nearest
 * node_modules first).
 */
function scratchLock(tarballSpec: string, integrity: string): Record<string, unknown> {
  const rootLock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const sdk = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')) as {
    version: string;
    dependencies: Record<string, string>;
  };
  const packages: Record<string, LockEntry> = {
    '': { name: 'scratch-app', dependencies: { '@hookstream/client': tarballSpec } },
    'node_modules/@hookstream/client': {
      version: sdk.version,
      resolved: tarballSpec,
      integrity,
      dependencies: sdk.dependencies,
    },
  };
  const locate = (from: string, name: string): string | undefined => {
    for (let base = from; ;) {
      if (rootLock.packages[`${base}/node_modules/${name}`]) return `${base}/node_modules/${name}`;
      const cut = base.lastIndexOf('/node_modules/');
      if (cut < 0) return rootLock.packages[`node_modules/${name}`] ? `node_modules/${name}` : undefined;
      base = base.slice(0, cut);
    }
  };
  const queue = ['node_modules/@hookstream/client'];
  while (queue.length > 0) {
    const from = queue.shift()!;
    const entry = packages[from];
    const names = [...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {})];
    for (const name of names) {
      const at = locate(from, name);
      if (!at) {
        if (entry.dependencies?.[name]) throw new Error(`package-lock.json has no ${name} for ${from}`);
        continue; // an optional dependency the root install left out
      }
      if (packages[at]) continue;
      const { dev: _dev, devOptional: _devOptional, peer: _peer, ...copy } = rootLock.packages[at];
      packages[at] = copy;
      queue.push(at);
    }
  }
  return { name: 'scratch-app', lockfileVersion: 3, requires: true, packages };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

/** Serves a built site on its own loopback origin. */
async function serveStatic(dir: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://page').pathname;
    const file = normalize(join(dir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dir + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

interface PageState {
  received: { seq: number; id: string; subject: string; data: unknown }[];
  errors: string[];
  ready: boolean;
}

describeWithBrowser('@hookstream/client packed, installed into a Vite project, in Chromium', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hookstream-sdk-package-'));
  const app = join(tmp, 'app');
  let packed: PackResult;
  let nats: NatsServerProcess;
  let gateway: RunningGateway;
  let browser: Browser;
  let site: { url: string; server: Server };

  /** Packs, installs offline, type-checks and builds the scratch project; returns the built site's directory. */
  async function buildScratchProject(): Promise<string> {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', tmp], {
      cwd: PKG,
      env: npmEnv(),
      maxBuffer: 16 * 1024 * 1024,
    });
    // `prepack` prints the build's output first; the JSON report is the last thing npm writes.
    packed = (JSON.parse(stdout.slice(stdout.indexOf('[\n'))) as PackResult[])[0];

    mkdirSync(app);
    const spec = `file:../${packed.filename}`;
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'scratch-app',
        private: true,
        type: 'module',
        dependencies: { '@hookstream/client': spec },
      }),
    );
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(scratchLock(spec, packed.integrity), null, 2));
    for (const file of ['index.html', 'main.ts']) cpSync(join(ROOT, 'test/fixtures/vite-app', file), join(app, file));
    // Typed against what was installed: the package's `exports` and declarations, DOM types, nothing else.
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'ESNext',
          moduleResolution: 'bundler',
          lib: ['ES2022', 'DOM'],
          types: [],
          strict: true,
          isolatedModules: true,
          noEmit: true,
        },
        include: ['main.ts'],
      }),
    );

    await run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], { cwd: app, env: npmEnv() });
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: app });
    await run(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], {
      cwd: app,
      env: npmEnv(),
    });
    return join(app, 'dist');
  }

  beforeAll(async () => {
    const stream = uniqueStreamName('SDKPKG');
    let dist: string;
    [dist, nats, browser] = await Promise.all([
      buildScratchProject(),
      NatsServerProcess.start(),
      chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS }),
    ]);
    gateway = await startGateway(
      testConfig({
        natsUrl: nats.url,
        file: { stream: { name: stream }, sources: E2E_SOURCES, auth: { anonymous: { subscribe: ['events.>'] } } },
      }),
    );
    site = await serveStatic(dist);
    await waitFor(async () => (await fetch(`${gateway.url}/readyz`)).status === 200, { message: 'gateway ready' });
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (site?.server ? site.server.close(() => resolve()) : resolve()));
    await gateway?.close();
    await nats?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the tarball holds ES modules and type declarations, and socket.io-client is its only dependency', () => {
    const files = packed.files.map((f) => f.path).sort();
    expect(files).toEqual(expect.arrayContaining(['package.json', 'dist/index.js', 'dist/index.d.ts']));
    expect(files.filter((f) => !['package.json', 'README.md'].includes(f) && !f.startsWith('dist/'))).toEqual([]);
    expect(files.filter((f) => f.includes('.spec.'))).toEqual([]);

    const installed = JSON.parse(readFileSync(join(app, 'node_modules/@hookstream/client/package.json'), 'utf8'));
    expect(installed.name).toBe('@hookstream/client');
    expect(installed.type).toBe('module');
    expect(installed.dependencies).toEqual({ 'socket.io-client': '4.8.3' });
    expect(installed.peerDependencies).toBeUndefined();
    expect(installed.optionalDependencies).toBeUndefined();
  });

  it.each(['websocket', 'sse'])(
    'the page Vite built receives a webhook published after it subscribed (%s)',
    async (transport) => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const requests: string[] = [];
        page.on('request', (r) => requests.push(r.url()));
        const subject = `events.acme.vite.${transport}.>`;
        const query = new URLSearchParams({ gw: gateway.url, subject, transport });
        await page.goto(`${site.url}/?${query}`);
        await page.waitForFunction(() => (globalThis as unknown as { hs?: PageState }).hs?.ready === true, undefined, {
          timeout: 15_000,
          polling: 50,
        });

        const res = await post(gateway.url, standardWebhook({ type: `vite.${transport}.hello`, data: { n: 1 } }));
        expect(res.status).toBe(202);
        await page.waitForFunction(
          () => ((globalThis as unknown as { hs?: PageState }).hs?.received.length ?? 0) >= 1,
          undefined,
          { timeout: 15_000, polling: 50 },
        );
        const state = await page.evaluate(() => (globalThis as unknown as { hs: PageState }).hs);
        expect(state.received).toEqual([
          {
            seq: res.body.seq,
            id: res.body.id,
            subject: `events.acme.vite.${transport}.hello`,
            data: { type: `vite.${transport}.hello`, data: { n: 1 } },
          },
        ]);
        expect(state.errors).toEqual([]);
        // The SDK came in the page's own bundle, not from the gateway's /sdk/hookstream.js.
        expect(requests.filter((u) => u.includes('/sdk/'))).toEqual([]);
      } finally {
        await context.close();
      }
    },
  );
});
