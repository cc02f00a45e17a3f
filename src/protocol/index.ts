/**
 * The wire protocol shared by the server, the SDK and the console: types only (plus the close-reason table),
 * so the SDK bundle carries nothing of the server.
 */
export * from './closing.js';
export type * from './delivery.js';
export type * from './errors.js';
export type * from './socket-events.js';
export type * from './ingest-answers.js';
export type * from './stats.js';
