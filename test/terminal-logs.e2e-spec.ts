/**
 * `node dist/main.js` in a terminal prints readable log lines; through a pipe it prints JSON lines. The terminal
 * is a real pseudo-terminal from util-linux's `script`; without `script` the terminal case is skipped loudly.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from '@jest/globals';
import { waitFor } from './harness/wait.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'dist/main.js');
const hasScript = spawnSync('script', ['--version']).status === 0;
if (!hasScript) console.warn('terminal-logs: util-linux `script` not found, the terminal case is skipped');

describe('logs of node dist/main.js', () => {
  const running: ChildProcess[] = [];
  const dirs: string[] = [];

  afterEach(async () => {
    for (const p of running.splice(0)) {
      if (p.exitCode !== null || p.signalCode !== null) continue;
      const exited = new Promise((resolve) => p.once('exit', resolve));
      process.kill(-p.pid!, 'SIGTERM'); // the whole group: `script` and the gateway under it
      await exited;
    }
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  /** Starts the gateway (argv) with an empty config on a random loopback port; returns a reader of its output. */
  function start(argv: string[]): () => string {
    const dataDir = mkdtempSync(join(tmpdir(), 'hookstream-logs-'));
    dirs.push(dataDir);
    const child = spawn(argv[0], argv.slice(1), {
      cwd: dataDir,
      detached: true,
      env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, TERM: 'dumb' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.push(child);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    return () => out;
  }

  (hasScript ? it : it.skip)('are readable lines in a terminal', async () => {
    const output = start([
      'script',
      '-qec',
      `${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)}`,
      '/dev/null',
    ]);
    await waitFor(() => output().includes('hookstream listening'), {
      timeoutMs: 30_000,
      message: 'the listening line',
    });
    const line = output()
      .split('\n')
      .find((l) => l.includes('hookstream listening'))!;
    expect(line).toMatch(/INFO.*hookstream listening/);
    expect(line.trimStart().startsWith('{')).toBe(false);
  });

  it('are JSON lines through a pipe', async () => {
    const output = start([process.execPath, MAIN]);
    await waitFor(() => output().includes('hookstream listening'), {
      timeoutMs: 30_000,
      message: 'the listening line',
    });
    const line = output()
      .split('\n')
      .find((l) => l.includes('hookstream listening'))!;
    expect(JSON.parse(line)).toMatchObject({ level: 30, msg: 'hookstream listening', store: 'embedded' });
  });
});
