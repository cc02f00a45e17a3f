// @ts-check
/**
 * The gateway build that process-level runs start (`node dist/main.js`): the server (tsc) and dist/public/
 * (the browser SDK and the console bundle, served by every gateway).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './procs.mjs';

/** Builds dist/ unconditionally (what Jest's global setup does once before the suites). */
export function buildGateway() {
  const opts = /** @type {const} */ ({ cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], opts);
  execFileSync(process.execPath, ['scripts/build-client.mjs', '--no-types'], opts);
}

/** @param {string} dir */
function newestSourceMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(path));
    else if (!entry.name.endsWith('.spec.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** @param {string} path */
function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Builds dist/ when dist/main.js or the browser bundle is missing, or older than a source file, so that a run
 * always tests the current code. Returns what it did.
 * @param {{ log?: (line: string) => void }} [opts]
 * @returns {'dist is up to date' | 'built'}
 */
export function ensureBuilt({ log = () => undefined } = {}) {
  const built = Math.min(
    mtime(join(ROOT, 'dist', 'main.js')),
    mtime(join(ROOT, 'dist', 'public', 'sdk', 'hookstream.js')),
  );
  const sources = Math.max(
    newestSourceMtime(join(ROOT, 'src')),
    newestSourceMtime(join(ROOT, 'packages', 'client', 'src')),
    newestSourceMtime(join(ROOT, 'web')),
  );
  if (built > 0 && built >= sources) return 'dist is up to date';
  log(built ? 'dist/ is older than the sources: building' : 'dist/ is missing: building');
  buildGateway();
  return 'built';
}
