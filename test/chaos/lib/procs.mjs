/**
 * Child processes for the chaos and soak runs: a 3-node nats-server cluster (routes, server names, its own
 * store dir each, monitoring port for /healthz), gateways running the built `dist/main.js`, and one
 * registry that SIGKILLs every child when this process ends (normally, on failure or on SIGINT/SIGTERM).
 * Everything listens on 127.0.0.1. Plain Node: imports only packages and node: modules.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, createWriteStream, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';

export const ROOT = new URL('../../../', import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------------------
// Child registry: nothing outlives the run

const children = new Set();
let exiting = false;

function killAllNow() {
  for (const child of children) {
    try {
      child.kill('SIGKILL'); // also ends a SIGSTOPped process
    } catch {
      // already gone
    }
  }
}

process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`\n${sig}: killing ${children.size} child process(es)\n`);
    killAllNow();
    process.exit(130);
  });
}

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `cond` until it is truthy or `timeoutMs` passes; returns whether it held. */
export async function waitUntil(cond, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return true;
    } catch {
      // a throwing probe counts as "not yet"
    }
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Distinct free ports (asked for together so that none is handed out twice). */
export async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

// ---------------------------------------------------------------------------------------------------------
// The gateway build

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when dist/main.js is missing or older than a source file (the run tests the current code). */
export function ensureBuilt(log = (s) => process.stderr.write(`${s}\n`)) {
  const main = join(ROOT, 'dist/main.js');
  let built = 0;
  try {
    built = statSync(main).mtimeMs;
  } catch {
    // missing
  }
  if (built > 0 && built >= newestMtime(join(ROOT, 'src'))) return;
  log(built ? 'dist/ is older than src/: building' : 'dist/main.js is missing: building');
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  execFileSync(process.execPath, ['scripts/build-client.mjs', '--no-types'], { cwd: ROOT, stdio: 'inherit' });
}

// ---------------------------------------------------------------------------------------------------------
// nats-server

export function natsServerBin() {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN;
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/bin', '/usr/bin'];
  for (const dir of dirs.filter(Boolean)) {
    try {
      accessSync(join(dir, 'nats-server'), constants.X_OK);
      return join(dir, 'nats-server');
    } catch {
      // keep looking
    }
  }
  throw new Error('nats-server not found (PATH, /usr/sbin, /usr/local/bin, or NATS_SERVER_BIN)');
}

/** One nats-server: fixed ports and store dir, so kill/restart brings back the same member. */
export class NatsNode {
  constructor({ name, port, monitorPort, clusterPort, routes, storeDir, logFile, clusterName }) {
    Object.assign(this, { name, port, monitorPort, clusterPort, routes, storeDir, clusterName });
    this.url = `nats://127.0.0.1:${port}`;
    this.log = createWriteStream(logFile, { flags: 'a' });
    this.child = null;
  }

  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid() {
    return this.child?.pid;
  }

  args() {
    // NATS's default max_payload (1MB) cannot hold the events of the default ingest.maxBodyBytes: the gateway
    // would stay unready. max_payload has no command-line flag.
    const conf = join(this.storeDir, 'nats-server.conf');
    writeFileSync(conf, 'max_payload: 8388608\n');
    const args = ['-c', conf, '-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir, '-n', this.name];
    args.push('-m', String(this.monitorPort));
    if (this.routes) {
      args.push('--cluster_name', this.clusterName, '--cluster', `nats://127.0.0.1:${this.clusterPort}`);
      args.push('--routes', this.routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
    }
    return args;
  }

  /** Spawns the process and waits until it listens (JetStream health is checked separately: healthy()). */
  async start() {
    mkdirSync(this.storeDir, { recursive: true });
    const child = spawn(natsServerBin(), this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    track(child);
    this.exited = new Promise((resolve) => child.once('exit', resolve));
    let out = '';
    const onData = (d) => {
      this.log.write(d);
      if (out.length < 1 << 16) out += d.toString();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const ok = await waitUntil(
      () => {
        if (!this.running) throw new Error('exited');
        return out.includes('Server is ready');
      },
      20_000,
      50,
    );
    if (!ok || !this.running) throw new Error(`nats-server ${this.name} did not start:\n${out.slice(-2000)}`);
  }

  /** JetStream health as the server reports it (`/healthz`: 200 once its JetStream state is current). */
  async healthy() {
    try {
      const res = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`, { signal: AbortSignal.timeout(2_000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async kill(signal = 'SIGKILL') {
    if (!this.running) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Three routed nodes (`n1`..`n3`) with JetStream; `urls` is what NATS_URL lists. */
export class NatsCluster {
  constructor(nodes) {
    this.nodes = nodes;
  }

  static async start(dir, { size = 3, clusterName = 'hookstream-chaos' } = {}) {
    const ports = await freePorts(size * 3);
    const clusterPorts = ports.slice(size, size * 2);
    const nodes = [];
    for (let i = 0; i < size; i++) {
      nodes.push(
        new NatsNode({
          name: `n${i + 1}`,
          port: ports[i],
          clusterPort: clusterPorts[i],
          monitorPort: ports[size * 2 + i],
          routes: size > 1 ? clusterPorts : null,
          storeDir: join(dir, `n${i + 1}`),
          logFile: join(dir, `nats-n${i + 1}.log`),
          clusterName,
        }),
      );
    }
    await Promise.all(nodes.map((n) => n.start()));
    const cluster = new NatsCluster(nodes);
    if (
      !(await waitUntil(async () => (await Promise.all(nodes.map((n) => n.healthy()))).every(Boolean), 60_000, 200))
    ) {
      throw new Error('the NATS cluster did not become healthy within 60 s');
    }
    return cluster;
  }

  get urls() {
    return this.nodes.map((n) => n.url).join(',');
  }

  node(name) {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no NATS node named ${name}`);
    return node;
  }

  async stop() {
    await Promise.all(this.nodes.map((n) => n.kill('SIGTERM')));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Gateway processes

export class Gateway {
  constructor(name, port, env, logFile) {
    Object.assign(this, { name, port, env });
    this.url = `http://127.0.0.1:${port}`;
    this.log = createWriteStream(logFile, { flags: 'a' });
    this.child = null;
    this.paused = false;
  }

  /** `fileConfig` is written as JSON and named by HOOKSTREAM_CONFIG. */
  static async start(name, dir, fileConfig, env = {}) {
    const configFile = join(dir, `${name}.json`);
    writeFileSync(configFile, JSON.stringify(fileConfig, null, 2));
    const port = await freePort();
    const gw = new Gateway(
      name,
      port,
      { HOOKSTREAM_CONFIG: configFile, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
      join(dir, `gateway-${name}.log`),
    );
    await gw.start();
    return gw;
  }

  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid() {
    return this.child?.pid;
  }

  async start() {
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.paused = false;
    track(child);
    this.exited = new Promise((resolve) => child.once('exit', resolve));
    child.stdout.on('data', (d) => this.log.write(d));
    child.stderr.on('data', (d) => this.log.write(d));
    const ok = await waitUntil(
      async () => {
        if (!this.running) throw new Error('exited');
        return (await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1_000) })).ok;
      },
      30_000,
      50,
    );
    if (!ok || !this.running) throw new Error(`gateway ${this.name} did not start (see its log)`);
  }

  /** `/readyz` is 200: the store is reachable, the stream exists and the live tap runs. */
  async ready() {
    try {
      return (await fetch(`${this.url}/readyz`, { signal: AbortSignal.timeout(2_000) })).status === 200;
    } catch {
      return false;
    }
  }

  signal(sig) {
    if (!this.running) return;
    this.child.kill(sig);
    if (sig === 'SIGSTOP') this.paused = true;
    if (sig === 'SIGCONT') this.paused = false;
  }

  async kill(signal = 'SIGKILL') {
    if (!this.running) return;
    if (this.paused && signal !== 'SIGKILL') this.signal('SIGCONT');
    this.child.kill(signal);
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }

  /** Prometheus text → { name{labels}: value } for the samples asked for (all when `names` is empty). */
  async metrics(names = []) {
    const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    const out = {};
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const space = line.lastIndexOf(' ');
      const key = line.slice(0, space);
      const bare = key.replace(/\{.*$/, '');
      if (names.length && !names.includes(bare)) continue;
      out[key] = Number(line.slice(space + 1));
    }
    return out;
  }
}
