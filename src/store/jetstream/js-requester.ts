/**
 * Request–reply to JetStream for the append path (PubAcks and KV direct gets), without the client's
 * per-request machinery: `nc.request` builds a RequestOne with its own timer, deferred and timeout promise,
 * and then, on every completed request, a `RequestError("cancelled")` whose stack capture alone was ~9 % of
 * the gateway's CPU in the ingest profile (three requests per webhook).
 *
 * Here: one wildcard inbox subscription (the client re-subscribes it after a reconnect), replies matched by
 * token, and one interval that fails requests past their deadline. The semantics are `nc.request`'s: a
 * request sent while disconnected sits in the client's buffer and times out unstored (so the caller checks the
 * connection first: that buffer is no durability); no responders (a 503 status with no body) is an error saying so; closing
 * fails whatever is still waiting.
 */
import { createInbox, headers as natsHeaders, type Msg, type NatsConnection } from '@nats-io/transport-node';
import type { KvEntry } from '@nats-io/kv';

/** A request that got no answer in time; the outcome of a publish is then unknown. */
export class JsRequestTimeout extends Error {
  constructor(subject: string, ms: number) {
    super(`no reply to ${subject} within ${ms} ms`);
    this.name = 'JsRequestTimeout';
  }
}

interface Waiting {
  subject: string;
  deadline: number;
  timeoutMs: number;
  resolve: (m: Msg) => void;
  reject: (e: Error) => void;
}

export interface PubAckLike {
  seq: number;
  duplicate: boolean;
}

const SWEEP_MS = 50;
const decoder = new TextDecoder();

export class JsRequester {
  private readonly inbox: string;
  private readonly waiting = new Map<string, Waiting>();
  private next = 0;
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly nc: NatsConnection) {
    this.inbox = `${createInbox()}.`;
    nc.subscribe(`${this.inbox}*`, { callback: (err, msg) => this.onReply(err, msg) });
  }

  /** Publishes to a stream subject and resolves with its PubAck; rejects on an error ack, timeout or no responders. */
  async publish(subject: string, data: Uint8Array, msgId: string | undefined, timeoutMs: number): Promise<PubAckLike> {
    const h = msgId === undefined ? undefined : natsHeaders();
    if (msgId !== undefined) h!.set('Nats-Msg-Id', msgId);
    const reply = await this.request(subject, data, h, timeoutMs);
    const ack = JSON.parse(decoder.decode(reply.data)) as {
      stream?: string;
      seq?: number;
      duplicate?: boolean;
      error?: { code?: number; err_code?: number; description?: string };
    };
    if (ack.error) {
      throw new Error(
        `JetStream refused the publish: ${ack.error.description ?? 'error'} (${ack.error.err_code ?? ack.error.code})`,
      );
    }
    if (!ack.stream || typeof ack.seq !== 'number') throw new Error('invalid PubAck');
    return { seq: ack.seq, duplicate: ack.duplicate === true };
  }

  /**
   * The newest entry of a KV key by direct get (the bucket must allow direct gets): null when there is none
   * (never written, or aged out); a delete or purge marker comes back with its operation.
   */
  async kvGet(
    bucket: string,
    key: string,
    timeoutMs: number,
  ): Promise<(Pick<KvEntry, 'operation'> & { value: string }) | null> {
    const reply = await this.request(
      `$JS.API.DIRECT.GET.KV_${bucket}.$KV.${bucket}.${key}`,
      undefined,
      undefined,
      timeoutMs,
    );
    const h = reply.headers;
    const code = h?.code ?? 0;
    if (code === 404) return null;
    if (code !== 0) throw new Error(`KV direct get failed: ${h?.description || code}`);
    const op = h?.get('KV-Operation');
    return { operation: op === 'DEL' || op === 'PURGE' ? op : 'PUT', value: decoder.decode(reply.data) };
  }

  /** Fails everything still waiting (on stop). */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    const err = new Error('the connection is closed');
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  private request(
    subject: string,
    data: Uint8Array | undefined,
    h: ReturnType<typeof natsHeaders> | undefined,
    timeoutMs: number,
  ): Promise<Msg> {
    if (this.closed) return Promise.reject(new Error('the connection is closed'));
    const token = (this.next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      this.waiting.set(token, { subject, deadline: Date.now() + timeoutMs, timeoutMs, resolve, reject });
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
      try {
        this.nc.publish(subject, data, { reply: this.inbox + token, headers: h });
      } catch (err) {
        this.waiting.delete(token);
        reject(err as Error);
      }
    });
  }

  private onReply(err: Error | null, msg: Msg): void {
    if (err) return; // the subscription itself failed (e.g. closed): waiting requests time out or close() fails them
    const token = msg.subject.slice(this.inbox.length);
    const w = this.waiting.get(token);
    if (!w) return; // answered after its timeout
    this.waiting.delete(token);
    const h = msg.headers;
    if (h?.code === 503 && msg.data.length === 0) w.reject(new Error(`no responders for ${w.subject}`));
    else w.resolve(msg);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [token, w] of this.waiting) {
      if (w.deadline > now) continue;
      this.waiting.delete(token);
      w.reject(new JsRequestTimeout(w.subject, w.timeoutMs));
    }
    if (this.waiting.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
