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
