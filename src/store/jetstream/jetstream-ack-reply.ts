/**
 * What the catch-up reader and the live tail read from each message their own pulls receive: the numbers in its
 * JetStream reply subject (AckReply), and the event built from it (ReadEvent).
 */
import type { StoredEvent } from '../event-store.port.js';

/**
 * One event read by our own pulls (catch-up reader and live tail). `time` is worked out only when asked for
 * (a catch-up never needs it), from the reply subject's timestamp token.
 */
export class ReadEvent implements StoredEvent {
  readonly #reply: string;
  readonly #tsEnd: number;

  constructor(
    readonly seq: number,
    readonly subject: string,
    readonly data: Uint8Array,
    reply: string,
    tsEnd: number,
  ) {
    this.#reply = reply;
    this.#tsEnd = tsEnd;
  }

  get time(): number {
    const start = this.#reply.lastIndexOf('.', this.#tsEnd - 1) + 1;
    return Number(BigInt(this.#reply.slice(start, this.#tsEnd)) / 1_000_000n);
  }
}

/**
 * The numbers in a JetStream message's reply subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.
 * <ts>.<pending>` (9 tokens), or with `<domain>.<account hash>` after `$JS.ACK` and a random token after the
 * pending count (12 tokens). Parsed into this object's fields, digit by digit, with no substring or object per
 * message (a split into tokens was 8–10 % of a catch-up's CPU). `prefix`, the 9-token form's `$JS.ACK.<stream>.
 * <consumer>.` for the consumer being read, skips the names at once; any other reply is parsed token by token.
 */
export class AckReply {
  seq = 0;
  dseq = 0;
  pending = 0;
  /** Index of the dot after the timestamp token (`time` is parsed from the reply only when asked for). */
  tsEnd = 0;
  /** Where the last number parsed ended. */
  private at = 0;

  constructor(private readonly prefix = '') {}

  /** True when `reply` is a JetStream reply subject; its numbers are then in the fields. */
  parse(reply: string): boolean {
    let i: number;
    if (this.prefix && reply.startsWith(this.prefix)) i = this.prefix.length;
    else {
      if (!reply.startsWith('$JS.ACK.')) return false;
      let dots = 0;
      for (let k = 8; k < reply.length; k++) if (reply.charCodeAt(k) === 0x2e) dots++;
      // After `$JS.ACK.`: 6 dots in the 9-token form (skip stream and consumer), 9 in the 12-token form.
      if (dots !== 6 && dots !== 9) return false;
      i = 8;
      for (let skip = dots === 6 ? 2 : 4; skip > 0; skip--) i = reply.indexOf('.', i) + 1;
    }
    i = reply.indexOf('.', i) + 1; // the delivery count
    if (i === 0 || !this.number(reply, i)) return false;
    this.seq = this.value;
    if (!this.number(reply, this.at + 1)) return false;
    this.dseq = this.value;
    const tsEnd = reply.indexOf('.', this.at + 1);
    if (tsEnd === -1 || !this.number(reply, tsEnd + 1)) return false;
    this.tsEnd = tsEnd;
    this.pending = this.value;
    return true;
  }

  private value = 0;

  /** Parses the decimal token at i into `value` (its end into `at`); false when it is not one. */
  private number(s: string, i: number): boolean {
    let v = 0;
    let j = i;
    for (; j < s.length; j++) {
      const d = s.charCodeAt(j) - 48;
      if (d === 0x2e - 48) break;
      if (d < 0 || d > 9) return false;
      v = v * 10 + d;
    }
    if (j === i || v > Number.MAX_SAFE_INTEGER) return false;
    this.value = v;
    this.at = j;
    return true;
  }
}
