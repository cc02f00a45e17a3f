/** SSE frames of deliveries (see delivery-encoding.ts): text for live deliveries, stored bytes for catch-up pages. */
import type { Delivery } from '../fanout/fanout.types.js';
import {
  digitCount,
  isPlainPage,
  subjectBytes,
  wireHeadLength,
  wireJson,
  writeAscii,
  writeDigits,
  writeWireHead,
} from './delivery-encoding-wire.js';
import { sseFrame } from './sse-frame.js';

const LF = 0x0a;
const CR = 0x0d;
let sseLast: Delivery | undefined;
let sseText: string | SseBytesFrame = '';

/**
 * `id: <cursor>` + `data: <delivery JSON>`: the same frame for every SSE client. A delivery that carries its
 * envelope's bytes (a catch-up page's) becomes an SseBytesFrame: its bytes are copied once, into the chunk the
 * page is written as, never decoded to text.
 */
export function sseDeliveryFrame(d: Delivery): string | SseBytesFrame {
  if (d !== sseLast) {
    sseLast = d;
    // A cursor is `<epoch>_<seq>`; JSON only holds a line break if the stored text was pretty-printed.
    const { bytes } = d;
    if (bytes && (d.cursorEpoch !== undefined || isPlainPage(d)) && !hasLineBreak(bytes)) {
      sseText = new SseBytesFrame(d, bytes);
    } else {
      const data = wireJson(d);
      sseText =
        data.includes('\n') || data.includes('\r')
          ? sseFrame({ id: d.cursor, data })
          : `id: ${d.cursor}\ndata: ${data}\n\n`;
    }
  }
  return sseText;
}

/** Whether the bytes hold a CR or LF (Buffer's search: a memchr, where Uint8Array's is an element loop). */
function hasLineBreak(bytes: Uint8Array): boolean {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b.indexOf(LF) !== -1 || b.indexOf(CR) !== -1;
}

const SSE_ID = Buffer.from('id: ');
const SSE_DATA = Buffer.from('\ndata: {');
const SSE_END = Buffer.from('}\n\n');
const SSE_SEQ = Buffer.from('","seq":');

/**
 * A page frame's parts up to each of its seq's three places, for a delivery whose cursor is `<epoch>_<seq>`
 * (Delivery.cursorEpoch): `id: <epoch>_`, `\ndata: {"cursor":"<epoch>_`, and per subject
 * `,"subject":<subject JSON>,"event":`. Made once per epoch and per subject, so a page's frame is a handful of
 * copies and its seq's digits, with no look at the cursor string.
 */
interface EpochHeads {
  epoch: string;
  id: Buffer;
  data: Buffer;
}
let epochHeads: EpochHeads = { epoch: '', id: SSE_ID, data: SSE_DATA };

function headsOf(epoch: string): EpochHeads {
  if (epochHeads.epoch !== epoch) {
    epochHeads = {
      epoch,
      id: Buffer.from(`id: ${epoch}_`),
      data: Buffer.from(`\ndata: {"cursor":"${epoch}_`),
    };
  }
  return epochHeads;
}

let tailSubject = '';
let tailBytes: Buffer = Buffer.alloc(0);
const tails = new Map<string, Buffer>();

/** `,"subject":<subject JSON>,"event":` as bytes: the last subject's at once, others remembered (a few hundred). */
function subjectTail(subject: string): Buffer {
  if (subject === tailSubject) return tailBytes;
  let b = tails.get(subject);
  if (b === undefined) {
    b = Buffer.from(`,"subject":${JSON.stringify(subject)},"event":`);
    if (tails.size >= 256) tails.clear();
    tails.set(subject, b);
  }
  tailSubject = subject;
  tailBytes = b;
  return b;
}

/**
 * The SSE frame of a catch-up page's delivery, not built until it is written: `id: <cursor>`, `data: {` + the
 * wire head, the stored envelope's bytes, and `}` + the blank line. A page's frames are written straight into
 * the one chunk it goes out as (sse-outbox.ts), with no buffer or string of their own.
 */
export class SseBytesFrame {
  /** Bytes of the frame. */
  readonly length: number;
  /** The subject's JSON, or with cursorEpoch: `,"subject":…,"event":` (subjectTail). */
  private readonly subject: Buffer;
  /** With cursorEpoch: the epoch's heads, and the seq's digit count. */
  private readonly heads: EpochHeads | undefined;
  private readonly digits: number = 0;

  constructor(
    private readonly d: Delivery,
    private readonly bytes: Uint8Array,
  ) {
    const epoch = d.cursorEpoch;
    if (epoch !== undefined) {
      const heads = headsOf(epoch);
      this.heads = heads;
      this.subject = subjectTail(d.subject);
      this.digits = digitCount(d.seq);
      this.length =
        heads.id.length +
        heads.data.length +
        SSE_SEQ.length +
        3 * this.digits +
        this.subject.length +
        bytes.length +
        SSE_END.length;
      return;
    }
    this.subject = subjectBytes(d.subject);
    this.length =
      SSE_ID.length +
      d.cursor.length +
      SSE_DATA.length +
      wireHeadLength(d.cursor, d.seq, this.subject) +
      bytes.length +
      SSE_END.length;
  }

  /** Writes the frame at `o`; returns the offset after it. */
  writeTo(out: Buffer, o: number): number {
    const { heads } = this;
    if (heads !== undefined) {
      const { seq } = this.d;
      const k = this.digits;
      out.set(heads.id, o);
      o = writeDigits(out, o + heads.id.length, seq, k);
      out.set(heads.data, o);
      o = writeDigits(out, o + heads.data.length, seq, k);
      out.set(SSE_SEQ, o);
      o = writeDigits(out, o + SSE_SEQ.length, seq, k);
      out.set(this.subject, o);
      o += this.subject.length;
      out.set(this.bytes, o);
      o += this.bytes.length;
      out.set(SSE_END, o);
      return o + SSE_END.length;
    }
    out.set(SSE_ID, o);
    o = writeAscii(out, o + SSE_ID.length, this.d.cursor);
    out.set(SSE_DATA, o);
    o = writeWireHead(out, o + SSE_DATA.length, this.d.cursor, this.d.seq, this.subject);
    out.set(this.bytes, o);
    o += this.bytes.length;
    out.set(SSE_END, o);
    return o + SSE_END.length;
  }

  /** The frame in a buffer of its own. */
  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.length);
    this.writeTo(out, 0);
    return out;
  }
}
