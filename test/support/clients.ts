/**
 * Subscriber clients for the fan-out e2e suites, in one import: real `socket.io-client` sockets
 * (socket-clients.ts), a raw SSE reader (sse-reader.ts: node:http plus a frame parser, so exact frames,
 * comments and back-pressure are visible), the `eventsource` package as a browser would use it
 * (browser-stream.ts), JWTs made with `jose` (tokens.ts), a paced publisher over `POST /v1/events`
 * (publisher.ts), the message shapes (contract-shapes.ts) and heap measurement (heap.ts).
 */
export * from './tokens.js';
export * from './contract-shapes.js';
export * from './socket-clients.js';
export * from './sse-reader.js';
export * from './browser-stream.js';
export * from './publisher.js';
export * from './heap.js';
