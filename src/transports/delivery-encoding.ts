/**
 * Encodes each delivery once per event, not once per client. The fan-out hub hands the same Delivery object
 * to every subscription an event matches, synchronously, one event after another, so remembering what was
 * built for the last delivery is enough: at 1,000 clients this turns 1,000 serialisations of an event into one.
 * (A cache keyed on every Delivery would keep the wire text of the hub's whole ring alive.)
 *
 * Nothing is serialised twice either: the envelope's JSON text (`Delivery.json`, the stored bytes) is spliced
 * in as it is, so a catch-up of 100,000 events never turns an envelope back into JSON.
 */
import * as ws from 'ws';
import type { Delivery } from '../fanout/fanout.types.js';
import { sseFrame } from './sse-frame.js';

/** The delivery's wire JSON (`WireDelivery`) with its opening brace dropped, to follow a spliced field. */
function wireTail(d: Delivery): string {
  return `"cursor":${JSON.stringify(d.cursor)},"seq":${d.seq},"subject":${JSON.stringify(d.subject)},"event":${d.json}}`;
}

/** `{cursor, seq, subject, event}` as JSON: what an SSE client's `data:` holds. */
export function wireJson(d: Delivery): string {
  return `{${wireTail(d)}`;
}

const LINE_BREAK = /[\r\n]/;
let sseLast: Delivery | undefined;
let sseText = '';

/** `id: <cursor>` + `data: <delivery JSON>`: the same bytes for every SSE client. */
export function sseDeliveryFrame(d: Delivery): string {
  if (d !== sseLast) {
    const data = wireJson(d);
    // A cursor is `<epoch>_<seq>`; JSON only holds a line break if the stored text was pretty-printed.
    sseText = LINE_BREAK.test(data) ? sseFrame({ id: d.cursor, data }) : `id: ${d.cursor}\ndata: ${data}\n\n`;
    sseLast = d;
  }
  return sseText;
}

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

/** One client's `event` message: the Socket.IO packet text, and its WebSocket frame once someone asks. */
export class SocketEventPacket {
  private frameBytes?: WsFrame;
  /** Handed to more than one client (a live event): framed once, and the frame copied for each. */
  shared = false;
  constructor(readonly packet: string) {}
  get frame(): WsFrame {
    return (this.frameBytes ??= wsFrame(this.packet));
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
 * The WebSocket frames of several packets, back to back in one buffer: what engine.io would write for them
 * one by one. A packet only this client gets (a catch-up page) is encoded straight into the batch, with no
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
      const n = 1 + Buffer.byteLength(p.packet);
      lengths[i] = n;
      total += headerLength(n) + n;
    }
  }
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i];
    const n = lengths[i];
    if (n < 0) {
      for (const b of p.frame) o += b.copy(out, o);
      continue;
    }
    o = writeTextHeader(out, o, n);
    out[o++] = 0x34; // '4': engine.io's "message" packet type
    o += out.write(p.packet, o);
  }
  return out;
}

let socketLast: Delivery | undefined;
let socketTail = '';
/** Packets of the last delivery by subscription id. Ids are per connection (s1, s2, …), so this stays tiny. */
const socketPackets = new Map<string, SocketEventPacket>();

/**
 * The Socket.IO packet for `emit('event', {subscription, ...delivery})` on the default namespace, as
 * socket.io-parser would encode it (protocol v5: type 2 = EVENT, then the JSON array of name and argument).
 * Clients whose subscription has the same id get the very same packet (and frame).
 */
export function socketEventPacket(subscription: string, d: Delivery): SocketEventPacket {
  if (d !== socketLast) {
    socketLast = d;
    socketTail = wireTail(d);
    socketPackets.clear();
  }
  let p = socketPackets.get(subscription);
  if (!p) {
    p = new SocketEventPacket(`2["event",{"subscription":${JSON.stringify(subscription)},${socketTail}]`);
    socketPackets.set(subscription, p);
  } else p.shared = true;
  return p;
}
