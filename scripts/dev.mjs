#!/usr/bin/env node
// `npm run dev`: the gateway under `nest start --watch` (recompiled and restarted on every server change), and
// the browser bundle (SDK and console, scripts/build-client.mjs) rebuilt whenever packages/client/src or
// web/console changes. The gateway reads the bundle from dist/public/ on each request, so a page reload picks it
// up without a restart. Uses config/demo.yaml unless HOOKSTREAM_CONFIG is set, like `npm start`.
import { spawn, spawnSync } from 'node:child_process';
import { watch } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildClient = () =>
  spawnSync(process.execPath, [join(root, 'scripts/build-client.mjs'), '--no-types'], { stdio: 'inherit' }).status;

if (buildClient() !== 0) process.exit(1);

let timer;
const watchers = ['packages/client/src', 'web/console'].map((dir) =>
  watch(join(root, dir), { recursive: true }, () => {
    // Editors write a file in several steps: rebuild once they are done.
    clearTimeout(timer);
    timer = setTimeout(buildClient, 100);
  }),
);

const nest = spawn(process.execPath, [join(root, 'node_modules/@nestjs/cli/bin/nest.js'), 'start', '--watch'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, HOOKSTREAM_CONFIG: process.env.HOOKSTREAM_CONFIG ?? 'config/demo.yaml' },
});
const stop = () => {
  for (const w of watchers) w.close();
  clearTimeout(timer);
};
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => nest.kill(signal));
nest.on('exit', (code, signal) => {
  stop();
  process.exitCode = code ?? (signal ? 1 : 0);
});
