/**
 * Reused memory for the large buffers a connection's batch is written from (a Socket.IO batch of frames, an
 * SSE page): a catch-up page of 512 events is ~250 KB, and a fresh allocation of that size per page per
 * client is memory V8 must count and reclaim, which showed up as garbage collection in the catch-up profile.
 *
 * A batch takes a buffer here and gives it back from its write callback, once the socket no longer needs the
 * bytes. Only buffers taken here are kept, only a few, and only between 64 KB and 1 MB; anything else is
 * left to the garbage collector as before.
 */

const MIN_KEPT = 64 * 1024;
const MAX_KEPT = 1024 * 1024;
/** Backing stores kept for reuse at most (a few MB at worst). */
const KEEP = 4;

const free: ArrayBuffer[] = [];
/** Backing stores handed out here (and not given back yet): the only ones give() accepts. */
const lent = new WeakSet<ArrayBuffer>();

/** A buffer of exactly `size` bytes (not zeroed). Give it back with givePageBuffer once it has been written. */
export function takePageBuffer(size: number): Buffer {
  if (size < MIN_KEPT || size > MAX_KEPT) return Buffer.allocUnsafe(size);
  for (let i = free.length - 1; i >= 0; i--) {
    const ab = free[i];
    if (ab.byteLength < size) continue;
    free.splice(i, 1);
    lent.add(ab);
    return Buffer.from(ab, 0, size);
  }
  // Power-of-two capacities, so a slightly larger page later still fits.
  let capacity = MIN_KEPT;
  while (capacity < size) capacity *= 2;
  const ab = Buffer.allocUnsafeSlow(capacity).buffer as ArrayBuffer;
  lent.add(ab);
  return Buffer.from(ab, 0, size);
}

/** Takes back a buffer from takePageBuffer whose bytes are written; anything else is ignored. */
export function givePageBuffer(buf: Buffer): void {
  const ab = buf.buffer as ArrayBuffer;
  if (!lent.has(ab)) return;
  lent.delete(ab);
  if (free.length < KEEP) free.push(ab);
}
