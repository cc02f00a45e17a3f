/**
 * Encodes each delivery once per event, not once per client. The fan-out hub hands the same Delivery object
 * to every subscription an event matches, synchronously, one event after another, so remembering what was
 * built for the last delivery is enough: at 1,000 clients this turns 1,000 serialisations of an event into one.
 * (A cache keyed on every Delivery would keep the wire text of the hub's whole ring alive.)
 *
 * Nothing is serialised twice either: the envelope's JSON text (`Delivery.json`, the stored bytes) is spliced
 * in as it is, so a catch-up of 100,000 events never turns an envelope back into JSON. A catch-up page's
 * deliveries carry the stored bytes themselves (`Delivery.bytes`): those are copied into the frames as they
 * are, never decoded to text and encoded back.
 *
 * The wire head both transports share is in delivery-encoding-wire.ts, SSE frames in delivery-encoding-sse.ts,
 * Socket.IO packets and WebSocket frames in delivery-encoding-socketio.ts; this module is what the outboxes import.
 */
export { wireJson } from './delivery-encoding-wire.js';
export { sseDeliveryFrame, SseBytesFrame } from './delivery-encoding-sse.js';
export { batchFrames, SocketEventPacket, socketEventPacket, type WsFrame } from './delivery-encoding-socketio.js';
