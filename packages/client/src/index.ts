/**
 * Hookstream client SDK, for browsers and Node: `import { createClient } from '@hookstream/client'`, or in a
 * page `import { createClient } from 'https://<gateway>/sdk/hookstream.js'`.
 */
export { createClient } from './client.js';
export { HookstreamError } from './types.js';
export type {
  ClientEvents,
  ClientOptions,
  ClientStatus,
  CloudEvent,
  Delivery,
  ErrorCode,
  EventSourceConstructor,
  EventSourceLike,
  GapNotice,
  HookstreamClient,
  MessageEventLike,
  ReconnectOptions,
  StorageLike,
  SubscribeOptions,
  Subscription,
  Transport,
} from './types.js';
// The wire protocol's types (deliveries, acks, error bodies, closing reasons), shared with the gateway: this
// folder is a link to the gateway's src/protocol, so both sides compile against one definition.
export type * from './protocol/index.js';
