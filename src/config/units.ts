/** Durations (`500ms 30s 5m 72h 7d`) and sizes (`512KB 1MB 10GB`, binary units) from config text. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };

/** Milliseconds, or null when the text is not a duration. A bare number is milliseconds. */
export function parseDuration(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!m) return null;
  const ms = Number(m[1]) * DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()];
  return Number.isSafeInteger(Math.round(ms)) ? Math.round(ms) : null;
}

/** Bytes, or null when the text is not a size. A bare number is bytes. */
export function parseSize(value: unknown): number | null {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$/i.exec(value);
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase().replace('i', '');
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[unit]);
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** A duration the DTO already validated, or `dflt` when it is unset. */
export function durationOr(value: unknown, dflt: number): number {
  return value === undefined ? dflt : (parseDuration(value) as number);
}

/** A size the DTO already validated, or `dflt` when it is unset. */
export function sizeOr(value: unknown, dflt: number): number {
  return value === undefined ? dflt : (parseSize(value) as number);
}
