// @ts-check
/**
 * Real nats-server processes for the e2e tests, the chaos and soak runs and the benchmark: a free port on
 * 127.0.0.1, a temp JetStream store (or a given one), an 8 MiB max_payload, kill/restart on the same port
 * and store for outage tests, and routed clusters. Never the shared server on 4222.
 */
import {
  accessSync,
  constants as fsConstants,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { canConnect, freePort, freePorts, isRunning, sleep, spawnTracked, stopChild, waitUntil } from './procs.mjs';

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/bin', '/usr/bin', '/usr/local/sbin'];

/** @param {string} path */
function isExecutable(path) {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * NATS_SERVER_BIN if set (and executable), else `nats-server` on PATH or in the usual system dirs.
 * @returns {string | undefined}
 */
export function natsServerBin() {
  const explicit = process.env.NATS_SERVER_BIN;
  if (explicit) return isExecutable(explicit) ? explicit : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export const NO_BINARY_MESSAGE =
  'nats-server was not found (looked at NATS_SERVER_BIN, PATH, /usr/sbin, /usr/local/bin). ' +
  'Install it with `apt-get install -y nats-server`, or set NATS_SERVER_BIN to the binary.';

/**
 * The default max_payload: the server's own default (1 MB) cannot hold the events of the default
 * ingest.maxBodyBytes, and the gateway refuses to become ready on such a server.
 */
export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

/**
 * @typedef {{ user: string, password: string } | { token: string } | { nkey: string }} NatsServerAuth
 * @typedef {{ certFile: string, keyFile: string, caFile?: string, verify?: boolean }} NatsServerTls
 *   With `verify`, clients must present a certificate signed by `caFile`.
 * @typedef {{ name: string, port: number, routes: number[] }} NatsServerCluster
 *   Route listener on `port`, routes to every port in `routes` (on 127.0.0.1).
 * @typedef {object} NatsServerOptions
 * @property {number} [port] default: a free port
 * @property {string} [storeDir] default: a temp dir, removed by stop()
 * @property {string[]} [args] more command-line arguments
 * @property {string} [serverName]
 * @property {number} [startTimeoutMs] how long to wait for "Server is ready"; default 20 s
 * @property {number} [maxPayload] default DEFAULT_MAX_PAYLOAD
 * @property {NatsServerAuth} [authorization] clients must sign in like this (a user NKey is its public key, `U…`)
 * @property {NatsServerTls} [tls]
 * @property {string} [extraConfig] more nats-server config text, e.g. an operator and its accounts
 * @property {number} [monitorPort] HTTP monitoring (`/healthz`, `/connz`) on this port
 * @property {NatsServerCluster} [cluster]
 * @property {string} [logFile] append the server's output to this file
 */

/**
 * The config file for the options that have no command-line flag.
 * @param {NatsServerOptions} opts
 */
function serverConfig(opts) {
  /** @param {string} v */
  const q = (v) => JSON.stringify(v);
  const lines = [`max_payload: ${opts.maxPayload ?? DEFAULT_MAX_PAYLOAD}`];
  const auth = opts.authorization;
  if (auth && 'user' in auth) lines.push(`authorization { user: ${q(auth.user)}, password: ${q(auth.password)} }`);
  if (auth && 'token' in auth) lines.push(`authorization { token: ${q(auth.token)} }`);
  if (auth && 'nkey' in auth) lines.push(`authorization { users: [ { nkey: ${q(auth.nkey)} } ] }`);
  const tls = opts.tls;
  if (tls) {
    const ca = tls.caFile ? `, ca_file: ${q(tls.caFile)}` : '';
    lines.push(`tls { cert_file: ${q(tls.certFile)}, key_file: ${q(tls.keyFile)}${ca}, verify: ${!!tls.verify} }`);
  }
  if (opts.extraConfig) lines.push(opts.extraConfig);
  return `${lines.join('\n')}\n`;
}

const LOG_LIMIT = 64 * 1024;

export class NatsServerProcess {
  /**
   * @param {number} port
   * @param {string} storeDir
   * @param {boolean} ownsStoreDir
   * @param {string} bin
   * @param {NatsServerOptions} opts
   */
  constructor(port, storeDir, ownsStoreDir, bin, opts) {
    this.port = port;
    this.storeDir = storeDir;
    this.ownsStoreDir = ownsStoreDir;
    this.bin = bin;
    this.opts = opts;
    this.url = `nats://127.0.0.1:${port}`;
    this.name = opts.serverName;
    this.monitorPort = opts.monitorPort;
    /** @type {import('node:child_process').ChildProcess | undefined} */
    this.child = undefined;
    /** @type {Promise<unknown> | undefined} */
    this.exited = undefined;
    this.log = '';
    this.stopped = false;
    this.logStream = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  }

  /**
   * Starts a server and waits until it is ready and listening.
   * @param {NatsServerOptions} [opts]
   */
  static async start(opts = {}) {
    const bin = natsServerBin();
    if (!bin) throw new Error(NO_BINARY_MESSAGE);
    const port = opts.port ?? (await freePort());
    const ownsStoreDir = !opts.storeDir;
    const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'hookstream-nats-'));
    mkdirSync(storeDir, { recursive: true });
    const server = new NatsServerProcess(port, storeDir, ownsStoreDir, bin, opts);
    try {
      await server.spawn();
    } catch (err) {
      server.logStream?.end();
      if (ownsStoreDir) rmSync(storeDir, { recursive: true, force: true });
      throw err;
    }
    return server;
  }

  /** True while the server process is alive. */
  get running() {
    return isRunning(this.child);
  }

  get pid() {
    return this.child?.pid;
  }

  /** The server's recent log output, for diagnosing a failure. */
  get output() {
    return this.log;
  }

  /** @private */
  async spawn() {
    const configFile = join(this.storeDir, 'nats-server.conf');
    writeFileSync(configFile, serverConfig(this.opts));
    const args = ['-c', configFile, '-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir];
    if (this.opts.serverName) args.push('-n', this.opts.serverName);
    if (this.opts.monitorPort) args.push('-m', String(this.opts.monitorPort));
    const cluster = this.opts.cluster;
    if (cluster) {
      args.push('--cluster_name', cluster.name, '--cluster', `nats://127.0.0.1:${cluster.port}`);
      args.push('--routes', cluster.routes.map((p) => `nats://127.0.0.1:${p}`).join(','));
    }
    args.push(...(this.opts.args ?? []));
    this.log = '';
    const child = spawnTracked(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', resolve));

    let sawReady = false;
    /** @param {Buffer} chunk */
    const onData = (chunk) => {
      this.logStream?.write(chunk);
      this.log = (this.log + chunk.toString('utf8')).slice(-LOG_LIMIT);
      if (this.log.includes('Server is ready')) sawReady = true;
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);

    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 20_000);
    /** @type {Error | undefined} */
    let spawnError;
    child.once('error', (err) => (spawnError = err));
    for (;;) {
      if (spawnError) throw new Error(`nats-server could not be started: ${spawnError.message}`);
      if (!isRunning(child)) {
        throw new Error(
          `nats-server exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready:\n${this.log}`,
        );
      }
      // "Server is ready" is printed after JetStream is up; the TCP probe confirms the listener.
      if (sawReady && (await canConnect(this.port))) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await this.exited;
        throw new Error(`nats-server on port ${this.port} was not ready in time:\n${this.log}`);
      }
      await sleep(20);
    }
  }

  /** JetStream health as the server reports it (`/healthz` is 200 once its JetStream state is current). */
  async healthy() {
    if (!this.monitorPort) throw new Error('healthy() needs a monitorPort');
    try {
      const res = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`, { signal: AbortSignal.timeout(2_000) });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /**
   * Sends `signal` (default SIGKILL, a crash) and waits for the process to exit.
   * @param {NodeJS.Signals} [signal]
   */
  async kill(signal = 'SIGKILL') {
    await stopChild(this.child, signal, 15_000);
  }

  /** Starts again on the same port and store dir (after kill(), or stops it gracefully first). */
  async restart() {
    if (this.stopped) throw new Error('nats-server was stopped; start a new one');
    if (this.running) await this.kill('SIGTERM');
    await this.spawn();
  }

  /** SIGTERM, wait, and remove the temp store dir if this harness created it. Idempotent. */
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    await stopChild(this.child, 'SIGTERM', 10_000);
    this.logStream?.end();
    if (this.ownsStoreDir) rmSync(this.storeDir, { recursive: true, force: true });
  }
}

/** Routed nodes (`n1`..`nN`) with JetStream and monitoring, each with its own store under one dir. */
export class NatsCluster {
  /** @param {NatsServerProcess[]} nodes */
  constructor(nodes) {
    this.nodes = nodes;
  }

  /**
   * Starts `size` nodes under `dir` (stores `dir/nK`, logs `dir/nats-nK.log`) and waits until all are healthy.
   * @param {string} dir
   * @param {{ size?: number, clusterName?: string }} [opts]
   */
  static async start(dir, { size = 3, clusterName = 'hookstream-chaos' } = {}) {
    const ports = await freePorts(size * 3);
    const clusterPorts = ports.slice(size, size * 2);
    const nodes = await Promise.all(
      Array.from({ length: size }, (_, i) =>
        NatsServerProcess.start({
          serverName: `n${i + 1}`,
          port: ports[i],
          monitorPort: ports[size * 2 + i],
          cluster: size > 1 ? { name: clusterName, port: clusterPorts[i], routes: clusterPorts } : undefined,
          storeDir: join(dir, `n${i + 1}`),
          logFile: join(dir, `nats-n${i + 1}.log`),
        }),
      ),
    );
    const cluster = new NatsCluster(nodes);
    const healthy = async () => (await Promise.all(nodes.map((n) => n.healthy()))).every(Boolean);
    if (!(await waitUntil(healthy, 60_000, 200))) {
      throw new Error('the NATS cluster did not become healthy within 60 s');
    }
    return cluster;
  }

  /** What NATS_URL lists. */
  get urls() {
    return this.nodes.map((n) => n.url).join(',');
  }

  /** @param {string} name */
  node(name) {
    const node = this.nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no NATS node named ${name}`);
    return node;
  }

  async stop() {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
