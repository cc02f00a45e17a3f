/**
 * Calls `onExpire` when a token's `exp` passes. setTimeout's delay is a 32-bit int, so long expiries are
 * re-checked in steps. Returns the function that cancels it.
 */
export function armTokenExpiry(expiresAtMs: number | undefined, onExpire: () => void, now = Date.now): () => void {
  if (expiresAtMs === undefined) return nothingToCancel;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = expiresAtMs - now();
    if (left <= 0) onExpire();
    else timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
  };
  arm();
  return () => clearTimeout(timer);
}

/** What a token without `exp` arms: one function for every such connection. */
function nothingToCancel(): void {}
