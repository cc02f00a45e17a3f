// @ts-check
/** Polls a condition until it holds or the deadline passes; tests wait on conditions, never on sleeps. */
import { sleep } from './procs.mjs';

/**
 * @typedef {object} WaitForOptions
 * @property {number} [timeoutMs]
 * @property {number} [intervalMs]
 * @property {string} [message] says what was awaited, for the timeout error
 */

/**
 * Resolves once `cond` holds; rejects with a message naming what was awaited when `timeoutMs` passes.
 * @param {() => boolean | Promise<boolean>} cond
 * @param {WaitForOptions} [opts]
 * @returns {Promise<void>}
 */
export async function waitFor(cond, { timeoutMs = 10_000, intervalMs = 25, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  /** @type {unknown} */
  let lastError;
  for (;;) {
    try {
      if (await cond()) return;
      lastError = undefined;
    } catch (err) {
      // A throwing probe counts as "not yet"; its error is reported if the deadline passes.
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`waitFor: timed out after ${timeoutMs} ms waiting for ${message}${cause}`);
    }
    await sleep(intervalMs);
  }
}
