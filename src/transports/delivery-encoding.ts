/**
 * Encodes each delivery once per event, not once per client. The fan-out hub hands the same Delivery object
 * to every subscription an event matches, synchronously, one event after another, so remembering the last
 * delivery encoded is enough: at 1,000 clients this turns 1,000 JSON serialisations of an event into one.
 * (A cache keyed on every Delivery would keep the wire text of the hub's whole ring alive.)
 */
import type { Delivery } from '../fanout/fanout.types.js';
import { sseFrame } from './sse-frame.js';

/** Remembers `encode(d)` for the last `d` it saw. */
function lastOne(encode: (d: Delivery) => string): (d: Delivery) => string {
  let last: Delivery | undefined;
  let text = '';
  return (d) => {
    if (d !== last) {
      text = encode(d);
      last = d;
    }
    return text;
  };
}

const sseText = lastOne((d) => sseFrame({ id: d.cursor, data: JSON.stringify(d) }));
// `"cursor":…}`: the delivery's JSON with its opening brace dropped, to follow the spliced subscription id.
const socketBody = lastOne((d) => JSON.stringify(d).slice(1));

/** `id: <cursor>` + `data: <delivery JSON>`: the same bytes for every SSE client. */
export function sseDeliveryFrame(d: Delivery): string {
  return sseText(d);
}

/**
 * The Socket.IO packet for `emit('event', {subscription, ...delivery})` on the default namespace, as
 * socket.io-parser would encode it (protocol v5: type 2 = EVENT, then the JSON array of name and argument).
 * Only the subscription id differs between clients, so it is spliced in front of the cached delivery body.
 */
export function socketEventPacket(subscription: string, d: Delivery): string {
  return `2["event",{"subscription":${JSON.stringify(subscription)},${socketBody(d)}]`;
}
