/** SSE frames of deliveries (see delivery-encoding.ts): text for live deliveries, stored bytes for catch-up pages. */
import type { Delivery } from '../fanout/fanout.types.js';
import {
  isPlainPage,
  subjectBytes,
  wireHeadLength,
  wireJson,
  writeAscii,
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
    if (bytes && isPlainPage(d) && !hasLineBreak(bytes)) sseText = new SseBytesFrame(d, bytes);
    else {
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

/**
 * The SSE frame of a catch-up page's delivery, not built until it is written: `id: <cursor>`, `data: {` + the
 * wire head, the stored envelope's bytes, and `}` + the blank line. A page's frames are written straight into
 * the one chunk it goes out as (sse-outbox.ts), with no buffer or string of their own.
 */
export class SseBytesFrame {
  /** Bytes of the frame. */
  readonly length: number;
  private readonly subject: Buffer;

  constructor(
    private readonly d: Delivery,
    private readonly bytes: Uint8Array,
  ) {
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
