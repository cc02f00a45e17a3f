/** Socket.IO `event` packets and their WebSocket frames (see delivery-encoding.ts). */
import * as ws from 'ws';
import type { Delivery } from '../fanout/fanout.types.js';
import { isPlainPage, subjectBytes, wireHead, wireHeadLength, writeWireHead } from './delivery-encoding-wire.js';
import { takePageBuffer } from './page-buffers.js';

/**
 * A WebSocket text frame for one engine.io message, built once and written as is to every WebSocket client
 * (engine.io's `wsPreEncodedFrame`, as Socket.IO's own broadcasts do): the header, then the payload.
 */
export type WsFrame = readonly Buffer[];

// ws exports its Sender (the ESM wrapper does); @types/ws does not declare it.
const { Sender } = ws as unknown as { Sender: { frame(data: Buffer, options: object): WsFrame } };

/** Engine.io message `4` + the Socket.IO packet, framed unmasked and uncompressed (a server's text frame). */
function wsFrame(packet: string): WsFrame {
  return Sender.frame(Buffer.from(`4${packet}`), { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true });
}

/**
 * One client's `event` message: the Socket.IO packet (`head`, then `body`, then `tail`), its text and its
 * WebSocket frame once someone asks. The body is the envelope: JSON text, or the stored bytes of a catch-up
 * page's delivery, which a batch copies as they are (turned into text only if something asks for `packet`).
 */
export class SocketEventPacket {
  private frameBytes?: WsFrame;
  private text?: string;
  /** Handed to more than one client (a live event): framed once, and the frame copied for each. */
  shared = false;
  constructor(
    protected readonly head: string,
    protected readonly body: string | Uint8Array = '',
    protected readonly tail = '',
  ) {}

  /** The packet's text. */
  get packet(): string {
    if (this.text === undefined) {
      const { body } = this;
      this.text = `${this.head}${typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString()}${this.tail}`;
    }
    return this.text;
  }

  /** The packet's size for the backlog's byte budget (its length: bytes for an ASCII head and tail). */
  get size(): number {
    return this.head.length + this.body.length + this.tail.length;
  }

  get frame(): WsFrame {
    return (this.frameBytes ??= wsFrame(this.packet));
  }

  /** Bytes of the engine.io message: `4` and the packet. */
  messageLength(): number {
    const { body } = this;
    const b = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    return 1 + Buffer.byteLength(this.head) + b + Buffer.byteLength(this.tail);
  }

  /** Writes the engine.io message (`4` and the packet) at `o`; returns the offset after it. */
  writeMessage(out: Buffer, o: number): number {
    out[o++] = 0x34; // '4': engine.io's "message" packet type
    o += out.write(this.head, o);
    const { body } = this;
    if (typeof body === 'string') o += out.write(body, o);
    else {
      out.set(body, o);
      o += body.length;
    }
    return o + out.write(this.tail, o);
  }
}

const PACKET_TAIL = Buffer.from('}]');

/**
 * A catch-up page's `event` packet (one client's, never shared): the packet prefix of its subscription, the wire
 * head written as bytes (writeWireHead), the stored bytes and `}]`, encoded straight into the batch. Its text,
 * which only the first packet of a batch is asked for, is built the string way.
 */
class PageEventPacket extends SocketEventPacket {
  private readonly subject: Buffer;
  private readonly length: number;

  constructor(
    prefixText: string,
    private readonly prefix: Buffer,
    private readonly d: Delivery,
    bytes: Uint8Array,
  ) {
    super(prefixText, bytes, '}]');
    this.subject = subjectBytes(d.subject);
    this.length = prefix.length + wireHeadLength(d.cursor, d.seq, this.subject) + bytes.length + PACKET_TAIL.length;
  }

  override get packet(): string {
    const body = this.bytes();
    return `${this.head}${wireHead(this.d)}${Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString()}}]`;
  }

  override get size(): number {
    return this.length;
  }

  override messageLength(): number {
    return 1 + this.length;
  }

  override writeMessage(out: Buffer, o: number): number {
    out[o++] = 0x34; // '4': engine.io's "message" packet type
    out.set(this.prefix, o);
    o = writeWireHead(out, o + this.prefix.length, this.d.cursor, this.d.seq, this.subject);
    const body = this.bytes();
    out.set(body, o);
    o += body.length;
    out.set(PACKET_TAIL, o);
    return o + PACKET_TAIL.length;
  }

  private bytes(): Uint8Array {
    return this.body as Uint8Array;
  }
}

/** Bytes of a server's (unmasked) WebSocket frame header for a payload of `n` bytes (RFC 6455 §5.2). */
function headerLength(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}

function writeTextHeader(out: Buffer, o: number, n: number): number {
  out[o] = 0x81; // FIN, opcode 1 (text)
  if (n < 126) {
    out[o + 1] = n;
    return o + 2;
  }
  if (n < 65536) {
    out[o + 1] = 126;
    out.writeUInt16BE(n, o + 2);
    return o + 4;
  }
  out[o + 1] = 127;
  out.writeUInt32BE(Math.floor(n / 0x1_0000_0000), o + 2);
  out.writeUInt32BE(n >>> 0, o + 6);
  return o + 10;
}

/**
 * The WebSocket frames of several packets, back to back in one buffer (from page-buffers.ts: give it back once
 * written): what engine.io would write for them one by one. A packet only this client gets (a catch-up page) is encoded straight into the batch, with no
 * buffer of its own; a shared one is framed once (`frame`, as ws's Sender frames it) and copied.
 */
export function batchFrames(packets: readonly SocketEventPacket[]): Buffer {
  const lengths = new Array<number>(packets.length);
  let total = 0;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i];
    if (p.shared) {
      lengths[i] = -1;
      for (const b of p.frame) total += b.length;
    } else {
      const n = p.messageLength();
      lengths[i] = n;
      total += headerLength(n) + n;
    }
  }
  const out = takePageBuffer(total);
  let o = 0;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i];
    const n = lengths[i];
    if (n < 0) {
      for (const b of p.frame) o += b.copy(out, o);
      continue;
    }
    o = writeTextHeader(out, o, n);
    o = p.writeMessage(out, o);
  }
  return out;
}

let socketLast: Delivery | undefined;
let socketHead = '';
/** Packets of the last delivery by subscription id. Ids are per connection (s1, s2, …), so this stays tiny. */
const socketPackets = new Map<string, SocketEventPacket>();
/** Each subscription id's packet prefix, built once (tiny for the same reason). */
const socketPrefixes = new Map<string, string>();

function socketPrefix(subscription: string): string {
  let prefix = socketPrefixes.get(subscription);
  if (prefix === undefined) {
    prefix = `2["event",{"subscription":${JSON.stringify(subscription)},`;
    if (socketPrefixes.size < 1_000) socketPrefixes.set(subscription, prefix);
  }
  return prefix;
}

/** Each subscription id's packet prefix as bytes (page packets), built once. */
const socketPrefixBytes = new Map<string, Buffer>();

function socketPrefixOf(subscription: string): Buffer {
  let prefix = socketPrefixBytes.get(subscription);
  if (prefix === undefined) {
    prefix = Buffer.from(socketPrefix(subscription));
    if (socketPrefixBytes.size < 1_000) socketPrefixBytes.set(subscription, prefix);
  }
  return prefix;
}

/**
 * The Socket.IO packet for `emit('event', {subscription, ...delivery})` on the default namespace, as
 * socket.io-parser would encode it (protocol v5: type 2 = EVENT, then the JSON array of name and argument).
 * Clients whose subscription has the same id get the very same packet (and frame). A catch-up page's delivery
 * (its stored bytes) goes to one client only: its packet is its own, encoded into the batch as bytes.
 */
export function socketEventPacket(subscription: string, d: Delivery): SocketEventPacket {
  const { bytes } = d;
  if (bytes && isPlainPage(d)) {
    return new PageEventPacket(socketPrefix(subscription), socketPrefixOf(subscription), d, bytes);
  }
  if (d !== socketLast) {
    socketLast = d;
    socketHead = wireHead(d);
    socketPackets.clear();
  }
  let p = socketPackets.get(subscription);
  if (!p) {
    const head = `${socketPrefix(subscription)}${socketHead}`;
    p = new SocketEventPacket(head, d.bytes ?? d.json, '}]');
    socketPackets.set(subscription, p);
  } else p.shared = true;
  return p;
}
