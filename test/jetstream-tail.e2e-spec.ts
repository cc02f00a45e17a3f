/**
 * The JetStream live tail on its own pulls, against a real nats-server: the ways a feed goes wrong (a message
 * lost on the way, the consumer deleted under it, the server restarted with no reconnect handling) each end
 * in a new consumer from lastSeq + 1 with nothing delivered twice or skipped, and idle pulls that expire are
 * renewed without recreating anything. The tail runs here without the store around it, so only its own
 * recovery is at work (the store also recreates every tail on reconnect).
 */
import { afterAll, afterEach, beforeAll, expect, it, jest } from '@jest/globals';
import { connect, type Msg, type NatsConnection, type SubscriptionOptions } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { JetStreamTail, type TailDeps } from '../src/store/jetstream/jetstream-tail.js';
import type { StoreLogger } from '../src/store/jetstream/jetstream-util.js';
import { describeWithNats, NatsServerProcess } from './support/nats-server.js';
import { uniqueStreamName } from './support/config.js';
import { waitFor } from './lib/wait.mjs';

jest.setTimeout(60_000);

const PREFIX = 'tt.events';
const enc = new TextEncoder();

type Line = { level: string; obj: Record<string, unknown>; msg?: string };
function memoryLogger(): StoreLogger & { lines: Line[] } {
  const lines: Line[] = [];
  const log = (level: string) => (obj: object, msg?: string) => {
    lines.push({ level, obj: obj as Record<string, unknown>, msg });
    if (process.env.HOOKSTREAM_TEST_LOG === '1') console.log(new Date().toISOString(), level, msg, JSON.stringify(obj));
  };
  return { lines, info: log('info'), warn: log('warn'), error: log('error') };
}

/** Why feeds ended, from the tail's log. */
const feedEnds = (logger: { lines: Line[] }) =>
  logger.lines.flatMap((l) => {
    const m = /^JetStream tail feed ended: (.+); recreating it$/.exec(l.msg ?? '');
    return m ? [l.obj.detail ? `${m[1]} ${String(l.obj.detail)}` : m[1]] : [];
  });

/**
 * The real connection, with a look at (and a say over) every message a subscription callback receives:
 * `onMessage` returning false drops the message before the tail sees it, as a loss on the way would.
 */
function tappedConnection(nc: NatsConnection, onMessage: (msg: Msg) => boolean): NatsConnection {
  return new Proxy(nc, {
    get(target, prop, receiver) {
      if (prop === 'subscribe') {
        return (subject: string, opts?: SubscriptionOptions) => {
          const callback = opts?.callback;
          if (!callback) return target.subscribe(subject, opts);
          return target.subscribe(subject, {
            ...opts,
            callback: (err, msg) => {
              if (err || onMessage(msg)) void callback(err, msg);
            },
          });
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const statusCode = (msg: Msg) => (msg.subject.startsWith('_INBOX.') ? (msg.headers?.code ?? 0) : 0);

describeWithNats('JetStreamTail on its own pulls', () => {
  let nats: NatsServerProcess;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    nats = await NatsServerProcess.start();
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  async function freshStream(): Promise<string> {
    const name = uniqueStreamName('TT');
    await jsm.streams.add({ name, subjects: [`${PREFIX}.${name}.>`] });
    cleanups.push(async () => void (await jsm.streams.delete(name).catch(() => undefined)));
    return name;
  }

  /** Appends n events, retrying through an outage; returns their sequences. */
  async function append(stream: string, n: number): Promise<number[]> {
    const js = jetstream(nc);
    const seqs: number[] = [];
    for (let i = 0; i < n; i++) {
      for (;;) {
        try {
          seqs.push((await js.publish(`${PREFIX}.${stream}.x.${i % 3}`, enc.encode(`e${i}`))).seq);
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    }
    return seqs;
  }

  function startTail(stream: string, conn: NatsConnection, more: Partial<TailDeps> = {}) {
    const logger = memoryLogger();
    const got: number[] = [];
    const tail = new JetStreamTail(
      {
        live: () => ({ nc: conn, js: jetstream(conn), jsm }),
        connected: () => !nc.isClosed() && nats.running,
        stream,
        filter: `${PREFIX}.${stream}.>`,
        logger,
        ...more,
      },
      1,
      (e) => got.push(e.seq),
    );
    cleanups.push(() => tail.stop());
    return { tail, got, logger };
  }

  const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  it('a message lost on the way: a new consumer from lastSeq + 1, nothing twice or skipped', async () => {
    const stream = await freshStream();
    let events = 0;
    const conn = tappedConnection(nc, (msg) => statusCode(msg) !== 0 || ++events !== 5);
    const { tail, got, logger } = startTail(stream, conn);
    await tail.ready();
    await append(stream, 20);
    await waitFor(() => got.length >= 20, { message: 'the tail to deliver 20 events' });
    expect(got).toEqual(upTo(20));
    expect(feedEnds(logger)).toEqual(['delivery gap 4 then 6']);
  });

  it('the consumer deleted under it: a new one from lastSeq + 1', async () => {
    const stream = await freshStream();
    const { tail, got, logger } = startTail(stream, nc);
    await tail.ready();
    await append(stream, 10);
    await waitFor(() => got.length >= 10, { message: 'the first 10 events' });
    const names: string[] = [];
    for await (const ci of jsm.consumers.list(stream)) names.push(ci.name);
    expect(names).toHaveLength(1);
    await jsm.consumers.delete(stream, names[0]);
    await waitFor(() => feedEnds(logger).length > 0, { message: 'the feed to notice the deletion' });
    await append(stream, 10);
    await waitFor(() => got.length >= 20, { message: 'the next 10 events' });
    expect(got).toEqual(upTo(20));
    expect(feedEnds(logger)).toEqual(['pull status 409 Consumer Deleted']);
  });

  it('idle pulls expire and are renewed; events after the quiet are delivered by the same consumer', async () => {
    const stream = await freshStream();
    const statuses: number[] = [];
    const conn = tappedConnection(nc, (msg) => {
      const code = statusCode(msg);
      if (code) statuses.push(code);
      return true;
    });
    const { tail, got, logger } = startTail(stream, conn, { expiresMs: 1_000 });
    await tail.ready();
    await append(stream, 3);
    await waitFor(() => got.length >= 3, { message: 'the first events' });
    const expired = statuses.filter((c) => c === 408).length;
    await waitFor(() => statuses.filter((c) => c === 408).length >= expired + 3, {
      message: 'three pulls to expire with nothing to deliver',
    });
    expect(statuses).toContain(100); // the server sends the idle heartbeats the pulls ask for
    await append(stream, 3);
    await waitFor(() => got.length >= 6, { message: 'the events after the quiet' });
    expect(got).toEqual(upTo(6));
    expect(feedEnds(logger)).toEqual([]);
    expect(logger.lines.filter((l) => l.msg === 'JetStream tail started')).toHaveLength(1);
  });

  it('a pull that ended without a word from the server: one quiet interval sends a new one, the feed goes on', async () => {
    const stream = await freshStream();
    // The first expiry's 408 is lost: the feed still counts that pull's budget, which is no longer on the server.
    let dropped = 0;
    let expired = 0;
    const conn = tappedConnection(nc, (msg) => {
      if (statusCode(msg) !== 408) return true;
      if (dropped === 0) return !++dropped;
      expired++;
      return true;
    });
    const { tail, got, logger } = startTail(stream, conn, { expiresMs: 1_000, heartbeatMs: 250, watchdogMs: 60_000 });
    await tail.ready();
    await waitFor(() => dropped === 1 && expired >= 2, { message: 'pulls expiring again after the lost status' });
    await append(stream, 3);
    await waitFor(() => got.length >= 3, { message: 'the events after the lost status' });
    expect(got).toEqual(upTo(3));
    expect(feedEnds(logger)).toEqual([]);
    expect(logger.lines.filter((l) => l.msg === 'JetStream tail started')).toHaveLength(1);
  });

  it('a busy event loop is not silence: what came while it was blocked is read before a tick judges', async () => {
    const stream = await freshStream();
    const heartbeatMs = 200;
    // Two intervals with nothing from the server (as when heartbeats come late), then a turn of three intervals
    // while the server keeps sending: the heartbeats of that turn are on the socket when the next tick runs.
    let silent = false;
    const conn = tappedConnection(nc, (msg) => !(silent && statusCode(msg) !== 0));
    let ticks = 0;
    let blocked = false;
    const afterTick = () => {
      ticks++;
      // After this tick's own judgement (queued before these, in the same turn).
      if (ticks === 3) setImmediate(() => (silent = true));
      if (ticks === 5) {
        setImmediate(() => {
          silent = false;
          const until = Date.now() + 3 * heartbeatMs;
          while (Date.now() < until) {
            // the event loop is busy
          }
          blocked = true;
        });
      }
    };
    // The feed's ticker (the only interval of heartbeatMs), with a look after each of its ticks.
    const realSetInterval = globalThis.setInterval;
    const spy = jest.spyOn(globalThis, 'setInterval').mockImplementation(((fn: () => void, ms?: number) =>
      realSetInterval(
        ms === heartbeatMs
          ? () => {
              fn();
              afterTick();
            }
          : fn,
        ms,
      )) as unknown as typeof setInterval);
    cleanups.push(async () => void spy.mockRestore());
    const { tail, got, logger } = startTail(stream, conn, { heartbeatMs, expiresMs: 10_000, watchdogMs: 60_000 });
    await tail.ready();
    await waitFor(() => blocked && ticks >= 8, { message: 'the busy turn and a few ticks after it' });
    await append(stream, 3);
    await waitFor(() => got.length >= 3, { message: 'the events after the busy turn' });
    expect(got).toEqual(upTo(3));
    expect(feedEnds(logger)).toEqual([]);
    expect(logger.lines.filter((l) => l.msg === 'JetStream tail started')).toHaveLength(1);
  });

  it('the server restarted (its in-memory consumer gone) with nobody recreating the tail: heartbeats tell it', async () => {
    const stream = await freshStream();
    const { tail, got, logger } = startTail(stream, nc, { expiresMs: 2_000, heartbeatMs: 250 });
    await tail.ready();
    await append(stream, 10);
    await waitFor(() => got.length >= 10, { message: 'the events before the restart' });
    await nats.kill('SIGKILL');
    await nats.restart();
    await append(stream, 10);
    await waitFor(() => got.length >= 20, { timeoutMs: 30_000, message: 'the events after the restart' });
    expect(got).toEqual(upTo(20));
    // No status comes from a server that forgot the pulls: silence is what ends the feed.
    expect(feedEnds(logger)[0]).toBe('heartbeats missed');
  });
});
