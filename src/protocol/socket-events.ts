/** The Socket.IO messages, by name, in both directions. */
import type { ClosingMessage } from './closing.js';
import type { GapNotice, WireDelivery } from './delivery.js';
import type { SubscribeErrorCode } from './errors.js';

/** `subscribe`: patterns to follow, and where to start (a cursor wins over `from`). */
export interface SubscribeMessage {
  subjects: string[];
  cursor?: string;
  /** `earliest`, `latest` (the default) or an RFC 3339 time. */
  from?: string;
}

export type SubscribeAck =
  | {
      ok: true;
      /** Names the subscription in `event` and `gap`. */ id: string;
      /** The start position. */ cursor: string;
    }
  | { ok: false; error: SubscribeErrorCode };

export interface UnsubscribeMessage {
  id: string;
}

/** `limit_exceeded`: any message with an ack is refused so while the client sends too fast. */
export type UnsubscribeAck =
  { ok: true } | { ok: false; error: Extract<SubscribeErrorCode, 'invalid_request' | 'limit_exceeded'> };

/** Messages the server sends. `E` is the envelope type (see WireDelivery). */
export interface ServerToClientEvents<E = unknown> {
  event: (msg: WireDelivery<E> & { subscription: string }) => void;
  gap: (msg: GapNotice & { subscription: string }) => void;
  closing: (msg: ClosingMessage) => void;
}

/** Messages a client sends; every one is acknowledged. */
export interface ClientToServerEvents {
  subscribe: (req: SubscribeMessage, ack: (answer: SubscribeAck) => void) => void;
  unsubscribe: (req: UnsubscribeMessage, ack?: (answer: UnsubscribeAck) => void) => void;
}
