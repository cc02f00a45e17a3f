/**
 * Jest's side of the shared nats-server harness (test/lib/nats-server.mjs): suites that need a real server
 * are skipped with a loud warning when there is no binary, or fail in CI.
 */
import { describe, it } from '@jest/globals';
import { natsServerBin, NO_BINARY_MESSAGE } from '../lib/nats-server.mjs';

export { DEFAULT_MAX_PAYLOAD, natsServerBin, NatsServerProcess } from '../lib/nats-server.mjs';
export type { NatsServerAuth, NatsServerOptions, NatsServerTls } from '../lib/nats-server.mjs';

/** In CI (or with REQUIRE_NATS=1) a missing nats-server is a failure, not a skip. */
export function requireNats(): boolean {
  return !!process.env.CI || process.env.REQUIRE_NATS === '1';
}

let warned = false;

/**
 * `describe` for suites that need a real nats-server. Without a binary the suite is skipped with one
 * loud warning, unless requireNats() (CI or REQUIRE_NATS=1), where it fails instead.
 */
export const describeWithNats = (name: string, fn: () => void): void => {
  if (natsServerBin()) {
    describe(name, fn);
    return;
  }
  if (requireNats()) {
    describe(name, () => {
      it('needs nats-server', () => {
        throw new Error(NO_BINARY_MESSAGE);
      });
    });
    return;
  }
  if (!warned) {
    warned = true;
    console.warn(`\n*** SKIPPING NATS SUITES ("${name}" and any other): ${NO_BINARY_MESSAGE} ***\n`);
  }
  describe.skip(name, fn);
};
