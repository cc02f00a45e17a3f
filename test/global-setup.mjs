// Builds dist/ once before the suites, for tests that run the gateway as users do (`node dist/main.js`), and
// dist/public/ (the browser SDK and the console) that every gateway, in-process ones included, serves.
import { execFileSync } from 'node:child_process';

export default function globalSetup() {
  const started = Date.now();
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
  execFileSync(process.execPath, ['scripts/build-client.mjs', '--no-types'], { stdio: 'inherit' });
  process.stderr.write(`\nbuilt dist/ and dist/public/ for the tests in ${Date.now() - started} ms\n`);
}
