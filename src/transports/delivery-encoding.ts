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
  constructor(readonly packet: string) {}
  get frame(): WsFrame {
    return (this.frameBytes ??= wsFrame(this.packet));
  }
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
  }
  return p;
}
