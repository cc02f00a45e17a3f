/**
 * Starts real nats-server processes for tests: a free port on 127.0.0.1, a temp JetStream store, and a
 * kill/restart cycle on the same port and store for outage tests. Never touches the shared server on 4222.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe, it } from '@jest/globals';

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/bin', '/usr/bin', '/usr/local/sbin'];

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** NATS_SERVER_BIN if set (and executable), else `nats-server` on PATH or in the usual system dirs. */
export function natsServerBin(): string | undefined {
  const explicit = process.env.NATS_SERVER_BIN;
  if (explicit) return isExecutable(explicit) ? explicit : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, 'nats-server');
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** In CI (or with REQUIRE_NATS=1) a missing nats-server is a failure, not a skip. */
export function requireNats(): boolean {
  return !!process.env.CI || process.env.REQUIRE_NATS === '1';
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

// Safety net: SIGKILL every server still running when the test process exits. The listener is only
// installed while servers run, so a long-lived Jest worker does not pile up exit listeners.
const running = new Set<ChildProcess>();
const killAll = () => {
  for (const child of running) child.kill('SIGKILL');
};
function track(child: ChildProcess): void {
  if (running.size === 0) process.on('exit', killAll);
  running.add(child);
  child.once('exit', () => {
    running.delete(child);
    if (running.size === 0) process.off('exit', killAll);
  });
}

export type NatsServerAuth = { user: string; password: string } | { token: string } | { nkey: string };

export interface NatsServerTls {
  certFile: string;
  keyFile: string;
  /** With `verify`, clients must present a certificate signed by this CA. */
  caFile?: string;
  verify?: boolean;
}

export interface NatsServerOptions {
  port?: number;
  storeDir?: string;
  args?: string[];
  serverName?: string;
  /** How long to wait for "Server is ready"; default 20 s. */
  startTimeoutMs?: number;
  /**
   * The server's max_payload. Default 8 MiB: the server's own default (1 MB) cannot hold the events of the
   * default ingest.maxBodyBytes, and the gateway refuses to become ready on such a server.
   */
  maxPayload?: number;
  /** Clients must sign in like this (a user NKey is its public key, `U…`). */
  authorization?: NatsServerAuth;
  tls?: NatsServerTls;
  /** More nats-server config text, e.g. an operator and its accounts. */
  extraConfig?: string;
}

export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

/** The nats-server config file for the options that have no command-line flag. */
function serverConfig(opts: NatsServerOptions): string {
  const q = (v: string) => JSON.stringify(v);
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
  readonly url: string;
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private log = '';
  private stopped = false;

  private constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly ownsStoreDir: boolean,
    private readonly bin: string,
    private readonly opts: NatsServerOptions,
  ) {
    this.url = `nats://127.0.0.1:${port}`;
  }

  static async start(opts: NatsServerOptions = {}): Promise<NatsServerProcess> {
    const bin = natsServerBin();
    if (!bin) throw new Error(NO_BINARY_MESSAGE);
    const port = opts.port ?? (await freePort());
    const ownsStoreDir = !opts.storeDir;
    const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'hookstream-nats-'));
    const server = new NatsServerProcess(port, storeDir, ownsStoreDir, bin, opts);
    try {
      await server.spawn();
    } catch (err) {
      if (ownsStoreDir) rmSync(storeDir, { recursive: true, force: true });
      throw err;
    }
    return server;
  }

  /** True while the server process is alive. */
  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The server's recent log output, for diagnosing a failed test. */
  get output(): string {
    return this.log;
  }

  private async spawn(): Promise<void> {
    const configFile = join(this.storeDir, 'nats-server.conf');
    writeFileSync(configFile, serverConfig(this.opts));
    const args = ['-c', configFile, '-js', '-a', '127.0.0.1', '-p', String(this.port), '-sd', this.storeDir];
    if (this.opts.serverName) args.push('-n', this.opts.serverName);
    args.push(...(this.opts.args ?? []));
    this.log = '';
    const child = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    track(child);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));

    let sawReady = false;
    const onData = (chunk: Buffer) => {
      this.log = (this.log + chunk.toString('utf8')).slice(-LOG_LIMIT);
      if (this.log.includes('Server is ready')) sawReady = true;
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);

    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 20_000);
    let spawnError: Error | undefined;
    child.once('error', (err) => (spawnError = err));
    for (;;) {
      if (spawnError) throw new Error(`nats-server could not be started: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
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
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Sends `signal` (default SIGKILL, a crash) and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.child!.kill(signal);
    await this.exited;
  }

  /** Starts again on the same port and store dir (after kill(), or stops it gracefully first). */
  async restart(): Promise<void> {
    if (this.stopped) throw new Error('nats-server was stopped; start a new one');
    if (this.running) await this.terminate();
    await this.spawn();
  }

  /** SIGTERM, wait, and remove the temp store dir if this harness created it. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.terminate();
    if (this.ownsStoreDir) rmSync(this.storeDir, { recursive: true, force: true });
  }

  private async terminate(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

const NO_BINARY_MESSAGE =
  'nats-server was not found (looked at NATS_SERVER_BIN, PATH, /usr/sbin, /usr/local/bin). ' +
  'Install it with `apt-get install -y nats-server`, or set NATS_SERVER_BIN to the binary.';

let warned = false;

/**
 * `describe` for suites that need a real nats-server. Without a binary the suite is skipped with one
 * loud warning, unless requireNats() (CI or REQUIRE_NATS=1), where it fails instead.
 */
export const describeWithNats = (name: string, fn: () => void): void => {
  if (natsServerBin()) {
    describe(name, fn);
    return;
  }
  if (requireNats()) {
    describe(name, () => {
      it('needs nats-server', () => {
        throw new Error(NO_BINARY_MESSAGE);
      });
    });
    return;
  }
  if (!warned) {
    warned = true;
    console.warn(`\n*** SKIPPING NATS SUITES ("${name}" and any other): ${NO_BINARY_MESSAGE} ***\n`);
  }
  describe.skip(name, fn);
};
