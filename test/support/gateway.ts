/**
 * Runs gateways for e2e tests: in-process (createApp on 127.0.0.1:0, fast, inspectable) or as a real
 * `node dist/main.js` process with a config file (kill -9, SIGTERM and restarts as users would see them).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { createApp } from '../../src/bootstrap.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { createLogger } from '../../src/logging/logger.js';
import type { EventStore } from '../../src/store/event-store.port.js';
import { freePort, spawnTracked } from '../lib/procs.mjs';

export { freePort };

export interface RunningGateway {
  url: string;
  port: number;
  app: INestApplication;
  close(): Promise<void>;
}

export async function startGateway(config: AppConfig, store?: EventStore): Promise<RunningGateway> {
  const app = await createApp(config, { logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), store });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  let closed = false;
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    app,
    close: async () => {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}

/** The gateway process ended before it was serving: its exit code and everything it printed. */
export class GatewayExitError extends Error {
  constructor(
    readonly code: number | null,
    readonly output: string,
  ) {
    super(`gateway exited with ${code}:\n${output}`);
    this.name = 'GatewayExitError';
  }
}

/** A gateway as a separate OS process, running the built `dist/main.js` (built by test/global-setup.mjs). */
export class GatewayProcess {
  private child?: ChildProcess;
  private exited?: Promise<number | null>;
  output = '';
  readonly url: string;

  private constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly dir: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  /** `file` is the config file content (JSON); `env` adds NATS_URL, DATA_DIR, ... */
  static async start(file: Record<string, unknown>, env: Record<string, string> = {}): Promise<GatewayProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'hookstream-gw-'));
    const configFile = join(dir, 'hookstream.json');
    writeFileSync(configFile, JSON.stringify(file));
    const port = await freePort();
    const gw = new GatewayProcess(
      port,
      { HOOKSTREAM_CONFIG: configFile, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
      dir,
    );
    try {
      await gw.spawn();
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return gw;
  }

  private async spawn(): Promise<void> {
    // Tracked: killed if the test process ends before dispose().
    const child = spawnTracked(process.execPath, ['dist/main.js'], {
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    // 'close' comes after the pipes are drained: the output is complete then.
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        await closed;
        throw new GatewayExitError(child.exitCode, this.output);
      }
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`gateway did not start within 20 s:\n${this.output}`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  /** Sends `sig` and waits for the exit code. */
  async stop(sig: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null)
      return this.child?.exitCode ?? null;
    this.child.kill(sig);
    return this.exited ?? null;
  }

  async restart(): Promise<void> {
    await this.stop('SIGKILL');
    await this.spawn();
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
