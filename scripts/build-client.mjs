#!/usr/bin/env node
// Builds what the gateway serves to browsers, into dist/public/ (served by src/transports/static.controller.ts):
//   sdk/hookstream.js       the client SDK (packages/client) as ONE ES module (socket.io-client bundled in),
//                           minified, with a sourcemap
//   console/index.html      the live console page (web/console), its console.js (importing /sdk/hookstream.js)
//                           and console.css
// and the `@hookstream/client` package itself (packages/client/dist: ES modules and type declarations).
// `--no-types` skips the package build (the test setup only needs the served files).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'public');
const started = Date.now();
const withTypes = !process.argv.includes('--no-types');

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
  absWorkingDir: root,
};

// The SDK: everything in one module, so `import { createClient } from '<gateway>/sdk/hookstream.js'` just works.
const sdk = await build({
  ...common,
  entryPoints: [join(root, 'packages/client/src/index.ts')],
  outfile: join(out, 'sdk/hookstream.js'),
  metafile: true,
});

// The console imports the SDK the gateway serves instead of bundling a second copy of it.
const useServedSdk = {
  name: 'use-served-sdk',
  setup(b) {
    b.onResolve({ filter: /^@hookstream\/client$/ }, () => ({ path: '/sdk/hookstream.js', external: true }));
  },
};
await build({
  ...common,
  entryPoints: [join(root, 'web/console/console.ts')],
  outfile: join(out, 'console/console.js'),
  plugins: [useServedSdk],
});
await build({
  ...common,
  entryPoints: [join(root, 'web/console/console.css')],
  outfile: join(out, 'console/console.css'),
  sourcemap: false,
});
mkdirSync(join(out, 'console'), { recursive: true });
copyFileSync(join(root, 'web/console/index.html'), join(out, 'console/index.html'));

// Guard the promise "loads nothing from other origins": no absolute URL may be fetched by the built files.
for (const file of ['console/index.html', 'console/console.js', 'console/console.css']) {
  const text = readFileSync(join(out, file), 'utf8');
  if (
    /(?:src|href)\s*=\s*["']?(?:https?:)?\/\/|@import\s+url\(\s*["']?(?:https?:)?\/\/|from\s*["'](?:https?:)?\/\//.test(
      text,
    )
  ) {
    throw new Error(`build-client: ${file} refers to another origin`);
  }
}

if (withTypes) {
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'packages/client/tsconfig.build.json')],
    {
      stdio: 'inherit',
    },
  );
}

const sdkBytes = Object.values(sdk.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
process.stderr.write(
  `build-client: dist/public/sdk/hookstream.js (${Math.round(sdkBytes / 1024)} KB) and dist/public/console/ ` +
    `${withTypes ? 'and packages/client/dist/ ' : ''}in ${Date.now() - started} ms\n`,
);
