// Builds dist/ once before the suites, for tests that run the gateway as users do (`node dist/main.js`), and
// dist/public/ (the browser SDK and the console) that every gateway, in-process ones included, serves.
import { buildGateway } from './lib/build.mjs';

export default function globalSetup() {
  const started = Date.now();
  buildGateway();
  process.stderr.write(`\nbuilt dist/ and dist/public/ for the tests in ${Date.now() - started} ms\n`);
}
