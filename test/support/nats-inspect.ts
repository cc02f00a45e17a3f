/** Reads a stream straight through the NATS API, to check what the gateway claims against what is stored. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';

export class StreamInspector {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
  ) {}

  static async open(url: string, stream: string): Promise<StreamInspector> {
    const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    return new StreamInspector(nc, await jetstreamManager(nc), stream);
  }

  async info() {
    return this.jsm.streams.info(this.stream);
  }

  async count(): Promise<number> {
    return (await this.info()).state.messages;
  }

  async lastSeq(): Promise<number> {
    return (await this.info()).state.last_seq;
  }

  /** Oldest stored sequence; `lastSeq + 1` when the stream is empty. */
  async firstSeq(): Promise<number> {
    return (await this.info()).state.first_seq;
  }

  /** The envelope at `seq`, parsed, with its subject and Nats-Msg-Id. */
  async get(
    seq: number,
  ): Promise<{ subject: string; msgId: string | undefined; envelope: Record<string, unknown> } | null> {
    const m = await this.jsm.streams.getMessage(this.stream, { seq });
    if (!m) return null;
    return { subject: m.subject, msgId: m.header?.get('Nats-Msg-Id'), envelope: m.json<Record<string, unknown>>() };
  }

  /** Every stored message in order: seq, subject, msgId and the envelope's id. */
  async all(): Promise<{ seq: number; subject: string; msgId: string | undefined; id: unknown }[]> {
    const info = await this.info();
    const out: { seq: number; subject: string; msgId: string | undefined; id: unknown }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await this.jsm.streams.getMessage(this.stream, { seq });
      if (m) out.push({ seq, subject: m.subject, msgId: m.header?.get('Nats-Msg-Id'), id: envelopeId(m.data) });
    }
    return out;
  }

  async purge(): Promise<void> {
    await this.jsm.streams.purge(this.stream);
  }

  async consumerCount(): Promise<number> {
    return (await this.info()).state.consumer_count;
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}

/** The CloudEvent `id` of stored envelope bytes (undefined when they are not a JSON object). */
export function envelopeId(data: Uint8Array): unknown {
  try {
    return (JSON.parse(new TextDecoder().decode(data)) as { id?: unknown }).id;
  } catch {
    return undefined;
  }
}
