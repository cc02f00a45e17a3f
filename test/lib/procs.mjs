// @ts-check
/**
 * Process plumbing shared by the e2e tests (Jest), the chaos and soak runs and the benchmark (plain node):
 * free loopback ports, polling, and a registry that SIGKILLs every tracked child when this process exits.
 * Plain ESM with JSDoc types, so that both load it without a build step.
 */
import { spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `cond` until it is truthy or `timeoutMs` passes; returns whether it held. A throwing probe counts as
 * "not yet".
 * @param {() => unknown} cond
 * @param {number} timeoutMs
 * @param {number} [intervalMs]
 * @returns {Promise<boolean>}
 */
export async function waitUntil(cond, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await cond()) return true;
    } catch {
      // not yet
    }
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/**
 * A port that was free on 127.0.0.1 a moment ago.
 * @returns {Promise<number>}
 */
export function freePort() {
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

/**
 * `n` distinct free ports (asked for together so that none is handed out twice).
 * @param {number} n
 * @returns {Promise<number[]>}
 */
export async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/**
 * Whether something accepts TCP connections on 127.0.0.1:`port`.
 * @param {number} port
 * @returns {Promise<boolean>}
 */
export function canConnect(port) {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

// ---------------------------------------------------------------------------------------------------------
// Child registry: nothing outlives the run

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();

function killAll() {
  for (const child of children) {
    try {
      child.kill('SIGKILL'); // also ends a SIGSTOPped process
    } catch {
      // already gone
    }
  }
}

/**
 * Registers `child` to be SIGKILLed when this process exits. The exit listener is only installed while
 * children run, so a long-lived Jest worker does not pile up listeners.
 * @template {import('node:child_process').ChildProcess} C
 * @param {C} child
 * @returns {C}
 */
export function track(child) {
  if (children.size === 0) process.on('exit', killAll);
  children.add(child);
  child.once('exit', () => {
    children.delete(child);
    if (children.size === 0) process.off('exit', killAll);
  });
  return child;
}

let signalsHooked = false;

/**
 * For command-line runs (chaos, bench), not Jest: on SIGINT/SIGTERM/SIGHUP kill every tracked child and exit.
 * @param {string} [label]
 */
export function exitOnSignals(label = process.argv[1] ?? 'node') {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
    process.on(sig, () => {
      process.stderr.write(`\n${label}: ${sig}, killing ${children.size} child process(es)\n`);
      killAll();
      process.exit(130);
    });
  }
}

/**
 * Spawns a tracked child.
 * @param {string} cmd
 * @param {readonly string[]} args
 * @param {import('node:child_process').SpawnOptions} opts
 */
export function spawnTracked(cmd, args, opts) {
  return track(spawn(cmd, args, opts));
}

/**
 * Whether `child` has not exited yet.
 * @param {import('node:child_process').ChildProcess | null | undefined} child
 */
export function isRunning(child) {
  return !!child && child.exitCode === null && child.signalCode === null;
}

/**
 * Sends `signal` and waits for the child's exit, SIGKILLing it after `graceMs`.
 * @param {import('node:child_process').ChildProcess | null | undefined} child
 * @param {NodeJS.Signals} [signal]
 * @param {number} [graceMs]
 */
export async function stopChild(child, signal = 'SIGTERM', graceMs = 10_000) {
  if (!child || !isRunning(child)) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Keeps the last `limit` characters a child printed on stdout and stderr; returns a reader.
 * @param {import('node:child_process').ChildProcess} child
 * @param {number} [limit]
 * @param {(chunk: Buffer) => void} [tee] also receives every chunk (e.g. a log file)
 */
export function captureOutput(child, limit = 64 * 1024, tee) {
  let out = '';
  /** @param {Buffer} d */
  const on = (d) => {
    tee?.(d);
    out = (out + d.toString('utf8')).slice(-limit);
  };
  child.stdout?.on('data', on);
  child.stderr?.on('data', on);
  return () => out;
}

/**
 * Waits until GET `url` answers 2xx, failing early when `child` exits.
 * @param {string} url
 * @param {import('node:child_process').ChildProcess} child
 * @param {{ timeoutMs?: number, output?: () => string }} [opts]
 */
export async function waitHttpOk(url, child, { timeoutMs = 30_000, output = () => '' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!isRunning(child)) {
      throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms:\n${output()}`);
    await sleep(50);
  }
}
