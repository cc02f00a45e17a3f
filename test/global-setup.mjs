// Builds dist/ once before the suites, for tests that run the gateway as users do (`node dist/main.js`).
import { execFileSync } from 'node:child_process';

export default function globalSetup() {
  const started = Date.now();
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  process.stderr.write(`\nbuilt dist/ for process-level tests in ${Date.now() - started} ms\n`);
}
