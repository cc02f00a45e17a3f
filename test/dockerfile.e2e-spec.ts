/**
 * The Dockerfile builds and its image starts, checked without a container engine: the test replays the
 * Dockerfile's own steps in a temp directory, one directory per stage standing in for its filesystem.
 *
 * - The build context is the checkout's tracked files (`git ls-files`, less `.dockerignore`), as a clean clone
 *   would send it. Files not yet added to git are not in it, as in a clone.
 * - COPY copies from the context or, with `--from`, from an earlier stage's directory; RUN runs its shell
 *   command in the stage's WORKDIR with the stage's ENV; CMD is started at the end.
 * - What a container engine gives and this machine cannot, replaced on purpose and only this:
 *   `npm ci` becomes a hard-linked copy of the checkout's node_modules (fast and offline; the lockfile npm
 *   rewrites is copied, not linked), `apt-get` does nothing (the host has its own toolchain), `chown` does
 *   nothing (the test runs as one user, and the image's `node` user does not exist here). Other npm commands
 *   (`npm run build`, `npm prune --omit=dev`) run for real, offline. USER, EXPOSE and HEALTHCHECK are not replayed.
 * - The result listens on a free loopback port (PORT and HOST override the image's ENV, nothing else does), must
 *   answer /healthz, and must serve the SDK bundle the build makes (the part the image once left out).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from '@jest/globals';
import { waitFor } from './harness/wait.js';
import { freePort } from './support/gateway.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
  line: number;
}

interface Stage {
  name?: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  cmd?: string[];
}

/** Instructions with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  for (const [i, raw] of text.split('\n').entries()) {
    if (!pending && (/^\s*#/.test(raw) || raw.trim() === '')) continue;
    if (!pending) start = i + 1;
    const continued = raw.endsWith('\\');
    pending += continued ? `${raw.slice(0, -1)} ` : raw;
    if (continued) continue;
    const m = /^\s*(\w+)\s+(.*)$/.exec(pending);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse "${pending}"`);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim(), line: start });
    pending = '';
  }
  return out;
}

/** `.dockerignore` as the simple path prefixes this repository uses. */
function ignoredBy(patterns: string[]): (file: string) => boolean {
  return (file) => patterns.some((p) => file === p || file.startsWith(`${p}/`));
}

async function buildContext(dir: string): Promise<void> {
  const ignore = ignoredBy(
    readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim().replace(/\/$/, ''))
      .filter((l) => l && !l.startsWith('#')),
  );
  const { stdout } = await run('git', ['ls-files', '-z'], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
  for (const file of stdout.split('\0')) {
    if (!file || ignore(file) || !existsSync(join(ROOT, file))) continue;
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(join(ROOT, file), join(dir, file));
  }
}

/** A hard-linked copy of a node_modules tree, with npm's hidden lockfile copied so a rewrite stays local. */
async function linkNodeModules(from: string, to: string): Promise<void> {
  await run('cp', ['-al', from, to]);
  const lock = join(to, '.package-lock.json');
  if (!existsSync(lock)) return;
  rmSync(lock); // unlink first: copying onto the shared inode would write into the checkout's file
  cpSync(join(from, '.package-lock.json'), lock);
}

/** Docker's rules: a directory source copies its contents to dest; files go into dest when it is a directory. */
async function copyInto(sources: string[], dest: string): Promise<void> {
  const destIsDir = dest.endsWith('/') || sources.length > 1 || isDir(dest);
  for (const src of sources) {
    if (!existsSync(src)) throw new Error(`COPY: ${src} does not exist`);
    const target = isDir(src) ? dest.replace(/\/$/, '') : destIsDir ? join(dest, basename(src)) : dest;
    mkdirSync(dirname(target), { recursive: true });
    if (isDir(src) && basename(src) === 'node_modules') {
      rmSync(target, { recursive: true, force: true });
      await linkNodeModules(src, target);
    } else {
      cpSync(src, target, { recursive: true });
    }
  }
}

function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** `tsconfig*.json`-style sources: a `*` in the last path segment. */
function expand(context: string, pattern: string): string[] {
  if (!pattern.includes('*')) return [join(context, pattern)];
  const dir = join(context, dirname(pattern));
  const re = new RegExp(`^${basename(pattern).replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`);
  return readdirSync(dir)
    .filter((f) => re.test(f))
    .map((f) => join(dir, f));
}

/** `npm ci`, `apt-get` and `chown` stand-ins (see the header); every other command is the real one. */
function writeShims(dir: string, realNpm: string): void {
  mkdirSync(dir, { recursive: true });
  const shim = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  shim(
    'npm',
    [
      'if [ "$1" = ci ]; then',
      `  cp -al "${join(ROOT, 'node_modules')}" ./node_modules || exit 1`,
      `  cp --remove-destination "${join(ROOT, 'node_modules/.package-lock.json')}" ./node_modules/.package-lock.json`,
      '  exit $?',
      'fi',
      `exec "${realNpm}" "$@"`,
    ].join('\n'),
  );
  shim('apt-get', 'exit 0');
  shim('chown', 'exit 0');
}

describe('Dockerfile', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hookstream-docker-'));
  let server: ChildProcess | undefined;

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  it('builds from the checkout and starts far enough to answer /healthz and serve the SDK', async () => {
    const context = join(tmp, 'context');
    await buildContext(context);
    const { stdout: npmPath } = await run('sh', ['-c', 'command -v npm']);
    const shims = join(tmp, 'shims');
    writeShims(shims, npmPath.trim());
    const basePath = `${shims}:${process.env.PATH ?? ''}`;

    const stages: Stage[] = [];
    let stage: Stage | undefined;
    const done: string[] = [];
    for (const ins of parseDockerfile(readFileSync(join(context, 'Dockerfile'), 'utf8'))) {
      const where = `Dockerfile line ${ins.line} (${ins.op} ${ins.args})`;
      if (ins.op === 'FROM') {
        const m = /^\S+(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
        stage = { name: m?.[1], root: join(tmp, `stage${stages.length}`), workdir: '/', env: {} };
        mkdirSync(stage.root, { recursive: true });
        stages.push(stage);
        continue;
      }
      if (!stage) throw new Error(`${where}: before any FROM`);
      const cwd = join(stage.root, stage.workdir);
      switch (ins.op) {
        case 'WORKDIR':
          stage.workdir = isAbsolute(ins.args) ? ins.args : join(stage.workdir, ins.args);
          mkdirSync(join(stage.root, stage.workdir), { recursive: true });
          break;
        case 'ENV':
          for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) stage.env[m[1]] = m[2].replace(/^"|"$/g, '');
          break;
        case 'COPY': {
          const words = ins.args.split(/\s+/);
          const flags = words.filter((w) => w.startsWith('--'));
          const paths = words.filter((w) => !w.startsWith('--'));
          const dest = paths.pop()!;
          const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
          const source = from === undefined ? undefined : stages.find((s) => s.name === from);
          if (from !== undefined && !source) throw new Error(`${where}: no stage named ${from}`);
          const srcs = paths.flatMap((p) => (source ? [join(source.root, p)] : expand(context, p)));
          const target = isAbsolute(dest) ? join(stage.root, dest) : join(cwd, dest);
          await copyInto(srcs, dest.endsWith('/') ? `${target}/` : target);
          break;
        }
        case 'RUN':
          try {
            await run('sh', ['-c', ins.args], {
              cwd,
              env: { ...process.env, ...stage.env, PATH: basePath, NODE_OPTIONS: '', npm_config_offline: 'true' },
              maxBuffer: 64 * 1024 * 1024,
            });
          } catch (err) {
            const e = err as { stdout?: string; stderr?: string; message: string };
            throw new Error(`${where} failed:\n${e.stderr || e.stdout || e.message}`);
          }
          break;
        case 'CMD':
          stage.cmd = JSON.parse(ins.args) as string[];
          break;
        case 'USER':
        case 'EXPOSE':
        case 'HEALTHCHECK':
          break;
        default:
          throw new Error(`${where}: this replay does not know ${ins.op}; extend test/dockerfile.e2e-spec.ts`);
      }
      done.push(ins.op);
    }
    expect(done).toEqual(expect.arrayContaining(['COPY', 'RUN', 'CMD']));

    const image = stages[stages.length - 1];
    expect(image.cmd).toBeDefined();
    const [bin, ...args] = image.cmd!;
    const port = await freePort();
    let output = '';
    server = spawn(bin === 'node' ? process.execPath : bin, args, {
      cwd: join(image.root, image.workdir),
      env: { PATH: process.env.PATH ?? '', HOME: tmp, ...image.env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    server.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (server!.exitCode !== null) throw new Error(`the image's CMD exited (${server!.exitCode}):\n${output}`);
        return (await fetch(`${base}/healthz`)).ok;
      },
      { timeoutMs: 30_000, message: `/healthz of the image's CMD (output so far: ${output})` },
    );
    const sdk = await fetch(`${base}/sdk/hookstream.js`);
    expect(sdk.status).toBe(200);
    expect(await sdk.text()).toContain('createClient');
  }, 300_000);
});
