/**
 * The first sequence stored at or after a time. nats-server 2.9 has no direct get by time, so an ephemeral consumer
 * is positioned by the server's own by-start-time lookup, and the seq of its first message is read directly.
 */
import { AckPolicy, DeliverPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { StoreUnavailableError } from '../event-store.port.js';
import { ADMIN_TIMEOUT_MS, nanos, streamStateOf, unavailable, withTimeout } from './jetstream-util.js';

/** `filter` covers the whole stream (`<prefix>.>`); `lastSeq + 1` when nothing was stored at or after `timeMs`. */
export async function seqAtTime(
  jsm: JetStreamManager,
  stream: string,
  filter: string,
  timeMs: number,
): Promise<number> {
  let consumerName: string | undefined;
  try {
    const ci = await withTimeout(
      jsm.consumers.add(stream, {
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: new Date(timeMs).toISOString(),
        filter_subject: filter,
        ack_policy: AckPolicy.None,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(10_000),
      }),
      ADMIN_TIMEOUT_MS,
      'consumer create',
    );
    consumerName = ci.name;
    if (ci.num_pending === 0) {
      return streamStateOf(await withTimeout(jsm.streams.info(stream), ADMIN_TIMEOUT_MS, 'stream info')).lastSeq + 1;
    }
    // The consumer starts at the first message at or after the time; read its seq directly.
    const msg = await withTimeout(
      jsm.direct.getMessage(stream, { seq: ci.delivered.stream_seq + 1, next_by_subj: filter }),
      ADMIN_TIMEOUT_MS,
      'direct get',
    );
    if (!msg) throw new StoreUnavailableError('seqAtTime: the first message after the time vanished');
    return msg.seq;
  } catch (err) {
    throw unavailable('seqAtTime failed', err);
  } finally {
    if (consumerName) void jsm.consumers.delete(stream, consumerName).catch(() => undefined);
  }
}
