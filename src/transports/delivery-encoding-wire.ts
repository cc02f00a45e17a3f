/**
 * The wire head of a delivery (`"cursor":…,"seq":…,"subject":…,"event":`), shared by both transports' frames: as
 * text for live deliveries, and written as bytes for a catch-up page's (stored bytes copied as they are).
 */
import type { Delivery } from '../fanout/fanout.types.js';

/**
 * The delivery's wire JSON (`WireDelivery`) with its opening brace dropped, up to where the envelope goes: the
 * envelope and a closing brace follow it.
 */
export function wireHead(d: Delivery): string {
  return `"cursor":${JSON.stringify(d.cursor)},"seq":${d.seq},"subject":${subjectJson(d.subject)},"event":`;
}

let lastSubject = '';
let lastSubjectJson = '""';

/** JSON.stringify(subject), remembered for the last subject: a catch-up page's events mostly share a few. */
function subjectJson(subject: string): string {
  if (subject !== lastSubject) {
    lastSubjectJson = JSON.stringify(subject);
    lastSubject = subject;
  }
  return lastSubjectJson;
}

/** `{cursor, seq, subject, event}` as JSON: what an SSE client's `data:` holds. */
export function wireJson(d: Delivery): string {
  return `{${wireHead(d)}${d.json}}`;
}

// ---- the wire head of a catch-up page's delivery, written as bytes ------------------------------------------
// A page's deliveries go to one client each, so their head is written straight into the page's chunk: no
// template string, JSON.stringify or UTF-8 encoding of it per event (those and their garbage were a quarter of
// the Socket.IO outbox's CPU). The bytes are exactly wireHead()'s.

const HEAD_CURSOR = Buffer.from('"cursor":"');
const HEAD_SEQ = Buffer.from('","seq":');
const HEAD_SUBJECT = Buffer.from(',"subject":');
const HEAD_EVENT = Buffer.from(',"event":');

/**
 * A cursor JSON.stringify leaves as it is between quotes, one byte per character: what encodeCursor makes
 * (`[0-9a-z]+_<seq>`). Anything else takes the text path.
 */
function isPlainCursor(cursor: string): boolean {
  for (let i = 0; i < cursor.length; i++) {
    const c = cursor.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c === 0x5f)) return false;
  }
  return cursor.length > 0;
}

/** Whether a delivery's head can be written as bytes: a plain cursor and a safe integer seq. */
export function isPlainPage(d: Delivery): boolean {
  return Number.isSafeInteger(d.seq) && d.seq >= 0 && isPlainCursor(d.cursor);
}

/** JSON.stringify(subject) as UTF-8 bytes, remembered for a few hundred subjects. */
const subjectCache = new Map<string, Buffer>();

export function subjectBytes(subject: string): Buffer {
  let b = subjectCache.get(subject);
  if (b === undefined) {
    b = Buffer.from(JSON.stringify(subject));
    if (subjectCache.size >= 256) subjectCache.clear();
    subjectCache.set(subject, b);
  }
  return b;
}

/** How many decimal digits a seq (a safe integer ≥ 0) has. */
export function digitCount(n: number): number {
  let k = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    k++;
  }
  return k;
}

/** Writes the `k` decimal digits of `n` at `o`; returns the offset after them. */
export function writeDigits(out: Buffer, o: number, n: number, k: number): number {
  let end = o + k;
  do {
    out[--end] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  } while (end > o);
  return o + k;
}

/** Bytes of the wire head for a plain cursor, a safe integer seq ≥ 0 and the subject's JSON bytes. */
export function wireHeadLength(cursor: string, seq: number, subject: Buffer): number {
  return (
    HEAD_CURSOR.length +
    cursor.length +
    HEAD_SEQ.length +
    digitCount(seq) +
    HEAD_SUBJECT.length +
    subject.length +
    HEAD_EVENT.length
  );
}

/** Writes a one-byte-per-character string at `o`; returns the offset after it. */
export function writeAscii(out: Buffer, o: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[o++] = text.charCodeAt(i);
  return o;
}

/** Writes wireHead()'s bytes at `o`; returns the offset after them. */
export function writeWireHead(out: Buffer, o: number, cursor: string, seq: number, subject: Buffer): number {
  out.set(HEAD_CURSOR, o);
  o = writeAscii(out, o + HEAD_CURSOR.length, cursor);
  out.set(HEAD_SEQ, o);
  o += HEAD_SEQ.length;
  o = writeDigits(out, o, seq, digitCount(seq));
  out.set(HEAD_SUBJECT, o);
  o += HEAD_SUBJECT.length;
  out.set(subject, o);
  o += subject.length;
  out.set(HEAD_EVENT, o);
  return o + HEAD_EVENT.length;
}
