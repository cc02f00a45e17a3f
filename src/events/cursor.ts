/**
 * The opaque subscriber cursor `<epoch>_<seq>` (docs/protocol.md) and the `from` start points. Pure.
 * The epoch identifies the stream (a recreated stream gets a new one), seq is the stream sequence.
 */

export interface Cursor {
  epoch: string;
  seq: number;
}

export type StartPoint = { kind: 'earliest' } | { kind: 'latest' } | { kind: 'time'; ms: number };

const EPOCH = /^[0-9a-z]{1,16}$/;
const CURSOR = /^([0-9a-z]{1,16})_(0|[1-9][0-9]{0,15})$/;
const MAX_CURSOR_LENGTH = 64;

/** `${epoch}_${seq}`. Throws RangeError on an epoch outside `[0-9a-z]{1,16}` or a seq that is not a safe integer ≥ 0. */
export function encodeCursor(c: Cursor): string {
  if (!EPOCH.test(c.epoch)) throw new RangeError(`invalid cursor epoch: ${JSON.stringify(c.epoch)}`);
  if (!Number.isSafeInteger(c.seq) || c.seq < 0) throw new RangeError(`invalid cursor seq: ${c.seq}`);
  return `${c.epoch}_${c.seq}`;
}

/** Strict decode; anything that encodeCursor could not have produced is null. Never throws. */
export function decodeCursor(s: unknown): Cursor | null {
  if (typeof s !== 'string' || s.length > MAX_CURSOR_LENGTH) return null;
  const m = CURSOR.exec(s);
  if (!m) return null;
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(seq)) return null;
  return { epoch: m[1], seq };
}

// RFC 3339 `date-time`: T/t separator, Z/z or ±hh:mm offset, optional fraction. Length-capped before matching.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
const MAX_TIME_LENGTH = 64;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Parses a `from` start point: `earliest`, `latest` or a strict RFC 3339 date-time (as epoch ms; a fraction
 * below the millisecond is cut, so a time start stays inclusive). Second 60 (a leap second) is accepted and
 * lands on the next minute. Anything else, including date-only values and what Date.parse would loosely
 * accept, is null.
 */
export function parseStart(from: unknown): StartPoint | null {
  if (from === 'earliest') return { kind: 'earliest' };
  if (from === 'latest') return { kind: 'latest' };
  if (typeof from !== 'string' || from.length > MAX_TIME_LENGTH) return null;
  const m = RFC3339.exec(from);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60) return null;
  let offsetMin = 0;
  if (m[9]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0-99 to 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return { kind: 'time', ms: d.getTime() - offsetMin * 60_000 };
}
