/** Polls a condition until it holds or the deadline passes; tests wait on conditions, never on sleeps. */
export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Says what was awaited, for the timeout error. */
  message?: string;
}

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 25, message = 'condition' }: WaitForOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
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
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
