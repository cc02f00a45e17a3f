/**
 * Encodes each delivery once per event, not once per client. The fan-out hub hands the same Delivery object
 * to every subscription an event matches, so the wire text is cached on that object's identity: at 1,000
 * clients this turns 1,000 JSON serialisations of an event into one.
 */
import type { Delivery } from '../fanout/fanout.types.js';
import { sseFrame } from './sse-frame.js';

const sseFrames = new WeakMap<Delivery, string>();
const socketBodies = new WeakMap<Delivery, string>();

/** `id: <cursor>` + `data: <delivery JSON>`: the same bytes for every SSE client. */
export function sseDeliveryFrame(d: Delivery): string {
  let frame = sseFrames.get(d);
  if (frame === undefined) {
    frame = sseFrame({ id: d.cursor, data: JSON.stringify(d) });
    sseFrames.set(d, frame);
  }
  return frame;
}

/**
 * The Socket.IO packet for `emit('event', {subscription, ...delivery})` on the default namespace, as
 * socket.io-parser would encode it (protocol v5: type 2 = EVENT, then the JSON array of name and argument).
 * Only the subscription id differs between clients, so it is spliced in front of the cached delivery body.
 */
export function socketEventPacket(subscription: string, d: Delivery): string {
  let body = socketBodies.get(d);
  if (body === undefined) {
    body = JSON.stringify(d).slice(1); // `"cursor":…}`, the opening brace dropped
    socketBodies.set(d, body);
  }
  return `2["event",{"subscription":${JSON.stringify(subscription)},${body}]`;
}
