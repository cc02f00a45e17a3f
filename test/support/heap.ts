/**
 * Heap measurement for the leak tests: a forced full GC when V8 allows one, and heapUsed after it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gcFn: (() => void) | null | undefined;

/** A full GC, if one can be forced (V8's --expose-gc turned on at run time); null when it cannot. */
export function forceGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  try {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** heapUsed after a forced GC (or as is, when GC cannot be forced). */
export function heapUsedAfterGc(): number {
  const gc = forceGc();
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}
