/**
 * Reads the stream straight through the NATS API (not through the gateway), to judge what the gateway
 * claimed against what is stored: every message with its seq, subject and Nats-Msg-Id, the stream's
 * cluster placement (leader, replicas current?) and its consumer count.
 */
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';

export class StreamInspector {
  constructor(nc, jsm, stream) {
    Object.assign(this, { nc, jsm, stream });
  }

  static async open(servers, stream) {
    const nc = await connect({
      servers: servers.split(','),
      name: 'chaos-inspector',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5_000,
    });
    const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 5_000 });
    return new StreamInspector(nc, jsm, stream);
  }

  info() {
    return this.jsm.streams.info(this.stream);
  }

  /** The current stream leader's server name, or null while there is none. */
  async leader() {
    try {
      return (await this.info()).cluster?.leader ?? null;
    } catch {
      return null;
    }
  }

  /** A leader, and every replica current and online (a restarted member has caught up). */
  async replicasCurrent(expectedReplicas) {
    const cluster = (await this.info()).cluster;
    if (!cluster?.leader) return false;
    const replicas = cluster.replicas ?? [];
    return replicas.length === expectedReplicas - 1 && replicas.every((r) => r.current && !r.offline);
  }

  async consumerCount() {
    return (await this.info()).state.consumer_count;
  }

  /** Server name → how many of the stream's consumers it leads (an R1 consumer lives on one node). */
  async consumerHosts() {
    const hosts = {};
    for await (const ci of this.jsm.consumers.list(this.stream)) {
      const leader = ci.cluster?.leader;
      if (leader) hosts[leader] = (hosts[leader] ?? 0) + 1;
    }
    return hosts;
  }

  /** Names of the stream's consumers (for a leak report). */
  async consumerNames() {
    const names = [];
    for await (const ci of this.jsm.consumers.list(this.stream)) names.push(ci.name);
    return names;
  }

  /**
   * Every stored message in stream order through one ephemeral AckNone consumer (deleted at the end):
   * `{seq, subject, msgId, eventId}`. Sequences are checked to be strictly increasing.
   */
  async readAll() {
    const info = await this.info();
    const total = info.state.messages;
    const out = [];
    if (total === 0) return out;
    const ci = await this.jsm.consumers.add(this.stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: 60_000_000_000,
    });
    const js = jetstream(this.nc, { timeout: 10_000 });
    try {
      const consumer = await js.consumers.get(this.stream, ci.name);
      let pending = ci.num_pending;
      let emptyRounds = 0;
      while (pending > 0 && emptyRounds < 3) {
        const iter = await consumer.fetch({ max_messages: Math.min(pending, 1000), expires: 5_000 });
        let got = 0;
        for await (const m of iter) {
          got++;
          let eventId;
          try {
            eventId = m.json().id;
          } catch {
            eventId = undefined;
          }
          out.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), eventId });
          pending = m.info.pending;
        }
        emptyRounds = got === 0 ? emptyRounds + 1 : 0;
      }
      if (pending > 0) throw new Error(`reading the stream: ${pending} messages still pending after empty fetches`);
    } finally {
      await this.jsm.consumers.delete(this.stream, ci.name).catch(() => undefined);
    }
    for (let i = 1; i < out.length; i++) {
      if (out[i].seq <= out[i - 1].seq) throw new Error(`stream read out of order at ${out[i].seq}`);
    }
    return out;
  }

  async close() {
    await this.nc.close().catch(() => undefined);
  }
}
