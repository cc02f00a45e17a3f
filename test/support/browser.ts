/**
 * Debian's Chromium for the browser suites, driven by playwright-core (no browser download). Without a binary a
 * suite is skipped with a loud warning, unless CI or REQUIRE_BROWSER=1, where it fails instead.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { describe, it } from '@jest/globals';
import { describeWithNats } from '../harness/nats-server.js';

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];
const NO_BROWSER = `Chromium was not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\`, or point CHROMIUM_BIN at a binary.`;

function hasChromium(): boolean {
  try {
    accessSync(CHROMIUM, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `describeWithNats` for suites that also need Chromium. */
export function describeWithBrowser(name: string, fn: () => void): void {
  if (hasChromium()) return describeWithNats(name, fn);
  if (process.env.CI || process.env.REQUIRE_BROWSER === '1') {
    describe(name, () => {
      it('needs Chromium', () => {
        throw new Error(NO_BROWSER);
      });
    });
    return;
  }
  console.warn(`\n*** SKIPPING BROWSER SUITE ("${name}"): ${NO_BROWSER} ***\n`);
  describe.skip(name, fn);
}
