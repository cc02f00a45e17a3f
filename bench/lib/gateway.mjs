// Runs Hookstream the way users run it — `node dist/main.js` with a config file — on 127.0.0.1, either on a
// private nats-server (NATS_URL) or on the embedded log (DATA_DIR in a temp dir). Also runs the bare
// reference servers (bench/refs/*.mjs) as separate processes with the same readiness check.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureOutput, freePort, ROOT, spawnTracked, stopChild, waitHttpOk } from '../../test/lib/procs.mjs';
import { BENCH_SECRET } from './util.mjs';

export { ROOT };
export const API_KEY = 'bench_publisher_key_0123456789abcdef';
const PROF_EXIT = join(ROOT, 'bench', 'lib', 'prof-exit.mjs');
let mainJs = 'dist/main.js';

/** Runs another build of the gateway (e.g. a patched copy of dist/ under bench/results/tmp/, for an A/B). */
export function useGatewayDist(dir) {
  mainJs = join(dir, 'main.js');
}

/** The config file every bench gateway runs with. */
export function benchConfig(extra = {}) {
  return {
    stream: { name: 'EVENTS', subjectPrefix: 'events', maxAge: '1h', maxBytes: '8GB', ...(extra.stream ?? {}) },
    idempotency: { ttl: '1h' },
    sources: [{ name: 'bench', verifier: 'standard-webhooks', secrets: [BENCH_SECRET], tolerance: '5m' }],
    auth: {
      apiKeys: [{ id: 'bench', key: API_KEY, publish: ['events.>'], subscribe: ['events.>'], ...(extra.apiKey ?? {}) }],
      anonymous: { subscribe: ['events.>'] },
    },
    // Every bench client is anonymous, from a few loopback addresses, and the scale curve holds 50,000 of them:
    // lift the three connection caps above that (the defaults stay as they are).
    limits: {
      connectionsPerProcess: 60_000,
      anonymousConnections: 60_000,
      connectionsPerIp: 60_000,
      ...(extra.limits ?? {}),
    },
    ...(extra.schemas ? { schemas: extra.schemas } : {}),
    ...(extra.delivery ? { delivery: extra.delivery } : {}),
  };
}

/**
 * Starts `node dist/main.js`. `store`: 'jetstream' (needs natsUrl) or 'embedded'. `profileDir`: run under
 * `--cpu-prof` (the profile is written when stop() ends the process).
 */
export async function startGateway({ store, natsUrl, profileDir, config = {} }) {
  const dir = mkdtempSync(join(tmpdir(), 'hookstream-bench-gw-'));
  const configFile = join(dir, 'hookstream.json');
  writeFileSync(configFile, JSON.stringify(benchConfig(config)));
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '',
    HOOKSTREAM_CONFIG: configFile,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
  };
  // Diagnostics a run may ask the gateway for (src/fanout/fanout-trace.ts; e.g. --trace-gc in NODE_OPTIONS).
  for (const k of ['HOOKSTREAM_FANOUT_TRACE', 'HOOKSTREAM_GATEWAY_NODE_OPTIONS']) {
    if (process.env[k]) env[k === 'HOOKSTREAM_FANOUT_TRACE' ? k : 'NODE_OPTIONS'] = process.env[k];
  }
  if (store === 'jetstream') env.NATS_URL = natsUrl;
  else env.DATA_DIR = join(dir, 'data');
  const execArgv = [];
  if (profileDir) {
    mkdirSync(profileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--import', PROF_EXIT);
  }
  const child = spawnTracked(process.execPath, [...execArgv, mainJs], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child, 32_768);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttpOk(`${url}/readyz`, child, { output });
  } catch (err) {
    await stopChild(child, 'SIGKILL', 1_000);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    kind: 'hookstream',
    url,
    port,
    pid: child.pid,
    dataDir: env.DATA_DIR,
    output,
    /** `keepData`: leave the temp dir (the embedded log) for a bare read afterwards; call cleanup() then. */
    async stop({ keepData = false } = {}) {
      // Under the profiler, SIGUSR2 makes the process exit normally so the .cpuprofile is written.
      await stopChild(child, profileDir ? 'SIGUSR2' : 'SIGTERM', 15_000);
      if (!keepData) rmSync(dir, { recursive: true, force: true });
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a bare reference server `bench/refs/<name>.mjs` with `args`; it prints nothing until asked. */
export async function startRef(name, { natsUrl, store, extraArgs = [], profileDir } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `hookstream-bench-${name}-`));
  const args = ['--port', String(port), '--store', store, '--data', dir, ...extraArgs];
  if (natsUrl) args.push('--nats', natsUrl);
  const execArgv = [];
  if (profileDir) {
    mkdirSync(profileDir, { recursive: true });
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--import', PROF_EXIT);
  }
  const child = spawnTracked(process.execPath, [...execArgv, join(ROOT, 'bench', 'refs', `${name}.mjs`), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = captureOutput(child, 32_768);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHttpOk(`${url}/healthz`, child, { output });
  } catch (err) {
    await stopChild(child, 'SIGKILL', 1_000);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    kind: 'bare',
    url,
    port,
    pid: child.pid,
    dataDir: dir,
    output,
    async stop() {
      await stopChild(child, profileDir ? 'SIGUSR2' : 'SIGTERM', 10_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
