/**
 * The Delivery for one stored event. The envelope's bytes become its JSON text once, and that text is what
 * every transport writes; `event` is parsed only if something in the process asks for it (tests, never the
 * hot paths). A catch-up of 100,000 events thus parses no JSON at all: parsing was ~10 % of its CPU.
 *
 * Hookstream writes every envelope with JSON.stringify, so the stream holds JSON objects. What is checked is
 * the shape a frame depends on: the text must be one `{…}` object. Anything else (a message published straight
 * into the stream's subjects, not through Hookstream) is sent as a JSON string holding the text, never
 * skipped. A message that looks like an object but is not JSON would reach clients as it is: the stream is
 * trusted to hold what Hookstream wrote (docs/guarantees.md, "Not promised").
 */
import type { TextDecoder } from 'node:util';
import type { StoredEvent } from '../store/event-store.port.js';
import type { Delivery } from './fanout.types.js';

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

class StoredDelivery implements Delivery {
  constructor(
    readonly cursor: string,
    readonly seq: number,
    readonly subject: string,
    readonly json: string,
  ) {}

  get event(): unknown {
    return JSON.parse(this.json);
  }
}

/** Whether the bytes are `{…}`, leading and trailing JSON whitespace aside. */
function looksLikeObject(data: Uint8Array): boolean {
  let start = 0;
  let end = data.length - 1;
  while (start <= end && isSpace(data[start])) start++;
  while (end >= start && isSpace(data[end])) end--;
  return end > start && data[start] === OPEN_BRACE && data[end] === CLOSE_BRACE;
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * A catch-up page's delivery: sent to the one client catching up, right away, so its frames are built from the
 * stored bytes (`bytes`) and the text is decoded only if something asks for `json`. Not for the ring: a
 * JetStream message's bytes are a view into the buffer it was read in, which this would keep alive.
 * Its cursor is `<cursorEpoch>_<seq>`, made only if a transport asks for it (an SSE page frame does not).
 */
class PageDelivery implements Delivery {
  #json?: string;
  #cursor?: string;

  constructor(
    readonly cursorEpoch: string,
    readonly seq: number,
    readonly subject: string,
    readonly bytes: Uint8Array,
    private readonly decoder: TextDecoder,
  ) {}

  get cursor(): string {
    return (this.#cursor ??= `${this.cursorEpoch}_${this.seq}`);
  }

  get json(): string {
    return (this.#json ??= this.decoder.decode(this.bytes));
  }

  get event(): unknown {
    return JSON.parse(this.json);
  }
}

/** Told about a stored envelope that is not a JSON object (it is sent as a JSON string holding the text). */
export type NotObjectHandler = (text: string, seq: number) => void;

export function storedDelivery(
  ev: StoredEvent,
  cursor: string,
  decoder: TextDecoder,
  onNotObject: NotObjectHandler,
): Delivery {
  const text = decoder.decode(ev.data);
  if (looksLikeObject(ev.data)) return new StoredDelivery(cursor, ev.seq, ev.subject, text);
  onNotObject(text, ev.seq);
  return new StoredDelivery(cursor, ev.seq, ev.subject, JSON.stringify(text));
}

/**
 * The Delivery for a stored event a catch-up page sends now (PageDelivery), or storedDelivery's when not an object.
 * `epoch` must be one a cursor holds (encodeCursor's rules) and `ev.seq` a safe integer ≥ 0: the cursor is then
 * exactly `<epoch>_<seq>` (Delivery.cursorEpoch).
 */
export function pageDelivery(
  ev: StoredEvent,
  epoch: string,
  decoder: TextDecoder,
  onNotObject: NotObjectHandler,
): Delivery {
  if (looksLikeObject(ev.data)) return new PageDelivery(epoch, ev.seq, ev.subject, ev.data, decoder);
  return storedDelivery(ev, `${epoch}_${ev.seq}`, decoder, onNotObject);
}
