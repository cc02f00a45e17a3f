/**
 * Socket.IO clients for the e2e suites: real `socket.io-client` sockets, a collector of everything one socket
 * receives, subscribe helpers, and a subscriber that resumes by cursor across disconnects as the SDK does.
 */
import { io, type Socket } from 'socket.io-client';
import { waitFor } from '../lib/wait.mjs';
import type { GapNotice, SocketDelivery, SubscribeAck, SubscribeRequest } from './contract-shapes.js';

export interface ClosingMessage {
  reason: string;
  cursor?: string;
}

/** What one socket received, in arrival order, per kind. Attach before subscribing. */
export class SocketCollector {
  /** Every `event` and `gap` in arrival order (to check that a gap notice comes first). */
  readonly log: (
    { kind: 'event'; msg: SocketDelivery } | { kind: 'gap'; msg: GapNotice & { subscription: string } }
  )[] = [];
  readonly closings: ClosingMessage[] = [];
  /** `closing` and `disconnect` in arrival order (the hint must come first). */
  readonly timeline: string[] = [];
  disconnectReason: string | undefined;

  constructor(readonly socket: Socket) {
    socket.on('event', (msg: SocketDelivery) => this.log.push({ kind: 'event', msg }));
    socket.on('gap', (msg: GapNotice & { subscription: string }) => this.log.push({ kind: 'gap', msg }));
    socket.on('closing', (msg: ClosingMessage) => {
      this.closings.push(msg);
      this.timeline.push('closing');
    });
    socket.on('disconnect', (reason: string) => {
      this.disconnectReason = reason;
      this.timeline.push('disconnect');
    });
  }

  /** Deliveries of one subscription (every subscription when omitted). */
  events(subscription?: string): SocketDelivery[] {
    const out: SocketDelivery[] = [];
    for (const e of this.log) {
      if (e.kind === 'event' && (subscription === undefined || e.msg.subscription === subscription)) out.push(e.msg);
    }
    return out;
  }

  gaps(subscription?: string): (GapNotice & { subscription: string })[] {
    const out: (GapNotice & { subscription: string })[] = [];
    for (const e of this.log) {
      if (e.kind === 'gap' && (subscription === undefined || e.msg.subscription === subscription)) out.push(e.msg);
    }
    return out;
  }

  seqs(subscription?: string): number[] {
    return this.events(subscription).map((d) => d.seq);
  }

  async waitForEvents(subscription: string, n: number, timeoutMs = 15_000): Promise<SocketDelivery[]> {
    await waitFor(() => this.events(subscription).length >= n, {
      timeoutMs,
      message: `${n} deliveries on ${subscription} (have ${this.events(subscription).length})`,
    });
    return this.events(subscription);
  }

  async waitForDisconnect(timeoutMs = 15_000): Promise<string> {
    await waitFor(() => this.disconnectReason !== undefined, { timeoutMs, message: 'socket disconnect' });
    return this.disconnectReason as string;
  }
}

export interface ConnectOptions {
  /** Handshake `auth` object; default `{token}` (or `{}` when token is undefined). */
  auth?: Record<string, unknown>;
  timeoutMs?: number;
}

/** A fresh WebSocket-only connection without automatic reconnection; rejects with the `connect_error`. */
export function connectSocket(url: string, token?: string, opts: ConnectOptions = {}): Promise<Socket> {
  const socket = io(url, {
    transports: ['websocket'],
    auth: opts.auth ?? (token === undefined ? {} : { token }),
    reconnection: false,
    forceNew: true,
    timeout: opts.timeoutMs ?? 10_000,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('connect_error');
      resolve(socket);
    });
    socket.once('connect_error', (err: Error) => {
      socket.close();
      reject(err);
    });
  });
}

/** Sends `subscribe` (any payload, to test refusals) and resolves with the ack. */
export async function subscribeSocket(socket: Socket, req: unknown, timeoutMs = 10_000): Promise<SubscribeAck> {
  return (await socket.timeout(timeoutMs).emitWithAck('subscribe', req)) as SubscribeAck;
}

/** Subscribes and throws unless the ack is ok; returns the subscription id and start cursor. */
export async function mustSubscribe(socket: Socket, req: SubscribeRequest): Promise<{ id: string; cursor: string }> {
  const ack = await subscribeSocket(socket, req);
  if (!ack.ok) throw new Error(`subscribe ${JSON.stringify(req)} refused: ${ack.error}`);
  return { id: ack.id, cursor: ack.cursor };
}

/**
 * A client that keeps one subscription alive across disconnects, as the browser SDK would: on any disconnect
 * it reconnects (to the next URL of `urls()`, if several) and resubscribes from the cursor of the last delivery
 * (or the last ack / gap resume point). Records every delivery and every closing hint.
 */
export class ResumingSocketSubscriber {
  readonly deliveries: SocketDelivery[] = [];
  readonly gaps: GapNotice[] = [];
  readonly closings: ClosingMessage[] = [];
  /** One entry per subscription made: the URL and the cursor it resumed from. */
  readonly sessions: { url: string; cursor?: string }[] = [];
  cursor: string | undefined;
  lastError: unknown;
  private from: string | undefined;
  private socket?: Socket;
  private stopped = false;
  private attempt = 0;
  private reconnecting: Promise<void> | null = null;

  constructor(
    private readonly urls: () => string[],
    private readonly token: string,
    private readonly subjects: string[],
    start: { cursor?: string; from?: string } = {},
  ) {
    this.cursor = start.cursor;
    this.from = start.from;
  }

  get connected(): boolean {
    return !!this.socket?.connected;
  }

  async start(): Promise<void> {
    await this.connectOnce();
  }

  private async connectOnce(): Promise<void> {
    const urls = this.urls();
    const url = urls[this.attempt % urls.length];
    this.attempt++;
    const socket = await connectSocket(url, this.token);
    this.socket = socket;
    socket.on('event', (d: SocketDelivery) => {
      this.deliveries.push(d);
      this.cursor = d.cursor;
    });
    socket.on('gap', (g: GapNotice) => {
      this.gaps.push(g);
      this.cursor = g.resumeCursor;
    });
    socket.on('closing', (c: ClosingMessage) => this.closings.push(c));
    const req: SubscribeRequest = { subjects: this.subjects };
    if (this.cursor !== undefined) req.cursor = this.cursor;
    else if (this.from !== undefined) req.from = this.from;
    try {
      const ack = await subscribeSocket(socket, req);
      if (!ack.ok) throw new Error(`subscribe refused: ${ack.error}`);
      // Before any delivery the ack's cursor is the exact resume point.
      if (this.cursor === undefined) this.cursor = ack.cursor;
      this.from = undefined;
    } catch (err) {
      socket.close();
      throw err;
    }
    this.sessions.push({ url, cursor: req.cursor });
    socket.on('disconnect', () => this.onDisconnect());
    if (!socket.connected) this.onDisconnect();
  }

  private onDisconnect(): void {
    if (this.stopped || this.reconnecting) return;
    this.reconnecting = this.reconnectLoop().finally(() => (this.reconnecting = null));
  }

  private async reconnectLoop(): Promise<void> {
    for (let tries = 0; !this.stopped; tries++) {
      try {
        await this.connectOnce();
        return;
      } catch (err) {
        this.lastError = err;
        // Back off between attempts like a real client would (pacing, not a wait for a test condition).
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** tries, 500)));
      }
    }
  }

  seqs(): number[] {
    return this.deliveries.map((d) => d.seq);
  }

  /** Drops the current connection as a network failure would; the client reconnects by itself. */
  drop(): void {
    this.socket?.disconnect();
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.reconnecting?.catch(() => undefined);
    this.socket?.close();
  }
}
