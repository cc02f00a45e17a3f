// Open-file limits for the scale scenario: one gateway holding 50,000 connections needs more descriptors than a
// default limit allows. `raiseFdLimit()` lifts this process's limit (soft and hard) with prlimit(1), which needs
// the privilege to raise a hard limit (root, or CAP_SYS_RESOURCE); processes started afterwards inherit it
// (Node and nats-server lift their soft limit to the hard one as they start). Without the privilege nothing
// changes, and the scenario keeps its steps within the limit it has.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** This process's open-file limits {soft, hard} (Linux), or null when they cannot be read. */
export function fdLimits() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/);
    const num = (v) => (v === 'unlimited' ? Infinity : Number(v));
    return { soft: num(soft), hard: num(hard) };
  } catch {
    return null;
  }
}

/** Raises the limit to `want` when allowed; returns {before, after, error}. */
export function raiseFdLimit(want) {
  const before = fdLimits();
  if (!before || before.soft >= want) return { before, after: before };
  let error;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${want}:${want}`], { stdio: 'pipe' });
  } catch (err) {
    error = String(err.stderr || err.message)
      .trim()
      .split('\n')[0];
    try {
      // At least the soft limit up to the hard one.
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${before.hard}:${before.hard}`], {
        stdio: 'pipe',
      });
    } catch {
      // keep what we have
    }
  }
  return { before, after: fdLimits(), error };
}
