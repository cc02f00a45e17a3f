/** What one event looks like on every transport (Socket.IO `event`, SSE `message`), and the gap notice. */

/** A CloudEvents 1.0 JSON envelope as stored by the gateway. */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time?: string;
  datacontenttype?: string;
  /**
   * The registered schema version the data was validated against
   * (`<gateway>/v1/schemas/<subject>/versions/<n>`); absent when it was not. Dispatch on it to read two versions.
   */
  dataschema?: string;
  /** The provider's JSON body, when it was JSON. */
  data?: T;
  /** A body that was not JSON, byte-exact. */
  data_base64?: string;
  /** Extension attributes (lower-case letters and digits). */
  [extension: string]: unknown;
}

/**
 * One event as delivered on every transport. `E` is the envelope's type: the SDK reads a `CloudEvent`, the
 * server passes stored bytes through and never looks inside (`unknown`).
 */
export interface WireDelivery<E = CloudEvent> {
  /** Opaque position: resume after this event by subscribing with it. */
  cursor: string;
  /** The stream sequence; strictly increasing within one epoch of the stream. */
  seq: number;
  subject: string;
  event: E;
}

/** Sent first when the events right after the requested position are gone (retention, purge, new epoch). */
export interface GapNotice {
  /** The cursor the subscription asked for (or had reached). */
  from: string;
  /** Where it continues from: just before the oldest event still stored. */
  resumeCursor: string;
}
