/**
 * The Socket.IO and SSE message shapes as the tests expect them (docs/protocol.md), and the helpers that
 * compute expectations from them: NATS wildcard matching and a strictly-increasing check.
 */

export interface Delivery {
  cursor: string;
  seq: number;
  subject: string;
  event: Record<string, unknown>;
}

export interface SocketDelivery extends Delivery {
  subscription: string;
}

export interface GapNotice {
  from: string;
  resumeCursor: string;
}

export type SubscribeAck = { ok: true; id: string; cursor: string } | { ok: false; error: string };

export interface SubscribeRequest {
  subjects: string[];
  cursor?: string;
  from?: string;
}

/** NATS wildcard matching, written independently of the app's own matcher (it computes expectations). */
export function natsMatch(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Throws with a readable message unless `seqs` is strictly increasing. */
export function expectStrictlyIncreasing(seqs: number[], what = 'sequence'): void {
  for (let i = 1; i < seqs.length; i++) {
    if (!(seqs[i] > seqs[i - 1])) {
      throw new Error(`${what} is not strictly increasing at index ${i}: ${seqs[i - 1]} then ${seqs[i]}`);
    }
  }
}
