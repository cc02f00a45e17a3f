/**
 * Gateway processes for the chaos and soak runs: the built `dist/main.js` with a JSON config file, on
 * 127.0.0.1, its output appended to a log file. Ports, nats-server and the build come from test/lib.
 * Plain Node: imports only packages and node: modules.
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, isRunning, ROOT, spawnTracked, stopChild, waitUntil } from '../../lib/procs.mjs';

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
    return isRunning(this.child);
  }

  get pid() {
    return this.child?.pid;
  }

  async start() {
    const child = spawnTracked(process.execPath, ['dist/main.js'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.paused = false;
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
    await stopChild(this.child, signal, 20_000);
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
