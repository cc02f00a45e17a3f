// A pool of subscriber clients in its own process (a few thousand at most: the per-process fd limit).
// Socket.IO clients are real `socket.io-client` sockets (websocket transport); SSE clients are node:http
// requests with a frame parser. Every delivery is checked as it arrives and again at the end:
// - broadcast clients (all on `events.bench.>`): every event of a bench stream matches, so seqs must follow
//   each other; a seq at or below the last one is a duplicate, a jump is a gap;
// - topic clients (one of T topics `events.bench.t<k>.>`, and with `broadcastToo` also `events.bench.tick`):
//   seqs must rise (else duplicate); at the end the seqs received are compared with the seqs the publisher
//   stored on that topic (and the broadcast seqs), from a phase's `fromSeq` on (missing = gaps or loss).
// Latency = receipt time − the publish time carried in the event (`event.data.t`).
// A connection the server (not the bench) ends is resumed from the last cursor, as a real client would.
// The client and its connection are in lib/bench-client.mjs; this file is the pool and its commands.
import { closeClient, dropClient, latency, newClient, open, reconnect } from '../lib/bench-client.mjs';
import { serve } from '../lib/workers.mjs';
import { Histogram, nowMs } from '../lib/util.mjs';

const clients = [];

/** Retries of an open answered 5xx, per client. */
const OPEN_RETRIES = 10;

/** Runs fn over items with at most `limit` in flight. */
async function pool(items, limit, fn) {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  });
  await Promise.all(runners);
}

/** The seq a client must reach: the last stored seq of its topic (or of the stream, for a broadcast). */
function targetOf(c, targets) {
  if (c.topic === null || targets.broadcast) return targets.lastSeq;
  return targets.lastByTopic?.[c.topic] ?? 0;
}

serve({
  /**
   * Opens `count` more clients; resolves when every one was acked (or failed). `topics` > 0: client i
   * subscribes to `events.bench.t<i mod topics>.>` instead of `subjects` (and `events.bench.tick` too with
   * `broadcastToo`). `transport` 'mixed': every other client is SSE. `urls`: clients spread over these
   * servers (replicas) instead of `url`.
   */
  async open({
    url,
    urls,
    transport,
    count,
    subjects,
    topics = 0,
    broadcastToo = false,
    cursor,
    from,
    targetSeq,
    awaitLive = false,
    concurrency = 100,
    timeoutMs = 60_000,
  }) {
    const fresh = Array.from({ length: count }, (_, i) => {
      const k = clients.length + i;
      const topic = topics > 0 ? k % topics : null;
      const subs = topic === null ? subjects : [`events.bench.t${topic}.>`];
      if (topic !== null && broadcastToo) subs.push('events.bench.tick');
      const tr = transport === 'mixed' ? (k % 2 ? 'sse' : 'socketio') : transport;
      const server = urls?.length ? urls[Math.floor(k / 2) % urls.length] : url;
      return newClient({ url: server, transport: tr, subjects: subs, topic, targetSeq, awaitLive });
    });
    clients.push(...fresh);
    const errors = [];
    let retried = 0;
    await pool(fresh, concurrency, async (c) => {
      // An open answered 5xx is tried again after a short pause, as the SDK and EventSource-style clients do:
      // a server that sheds a burst of opens (Pushpin answers 502 when its origin queue is full) still gets
      // every client, and the retries are counted.
      for (let attempt = 0; ; attempt++) {
        const why = await open(c, { cursor, from, timeoutMs });
        if (!why) break;
        if (!/^HTTP 5\d\d$/.test(why) || attempt >= OPEN_RETRIES) {
          if (errors.length < 5) errors.push(why);
          break;
        }
        retried++;
        closeClient(c);
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
      }
    });
    const cursors = fresh.slice(0, 3).map((c) => c.cursor);
    return {
      opened: fresh.filter((c) => c.startSeq !== null).length,
      errors,
      retried,
      total: clients.length,
      cursors,
    };
  },

  /** Starts recording latency (the counters always run). */
  record() {
    latency.hist = new Histogram();
    latency.recording = true;
  },

  stop() {
    latency.recording = false;
  },

  /**
   * Counters across the pool; `targets` ({lastSeq, lastByTopic}) adds `behind`: clients that have not yet
   * reached their last stored seq. `full` adds the latency histogram and per-client timings.
   */
  stats({ full = false, targets } = {}) {
    const out = {
      clients: clients.length,
      connected: 0,
      received: 0,
      dups: 0,
      gaps: 0,
      missing: 0,
      gapNotices: 0,
      closings: 0,
      errors: 0,
      live: 0,
      reached: 0,
      drops: 0,
      behind: 0,
      minLast: Infinity,
      firstAt: Infinity,
      lastAt: 0,
    };
    for (const c of clients) {
      if (c.connected) out.connected++;
      out.received += c.received;
      out.dups += c.dups;
      out.gaps += c.gaps;
      out.missing += c.missing;
      out.gapNotices += c.gapNotices;
      out.closings += c.closings;
      out.errors += c.errors;
      out.drops += c.drops;
      if (c.liveAt) out.live++;
      if (c.reachedAt) out.reached++;
      if (targets && c.startSeq !== null && c.last < targetOf(c, targets)) out.behind++;
      if (c.topic === null) out.minLast = Math.min(out.minLast, c.last);
      if (c.firstAt && c.firstAt < out.firstAt) out.firstAt = c.firstAt;
      if (c.lastAt > out.lastAt) out.lastAt = c.lastAt;
    }
    if (out.minLast === Infinity) out.minLast = 0;
    if (out.firstAt === Infinity) out.firstAt = 0;
    if (full) {
      // Why opens failed, by reason (a few at most).
      const reasons = {};
      for (const c of clients) if (c.lastError) reasons[c.lastError] = (reasons[c.lastError] ?? 0) + 1;
      out.errorReasons = Object.fromEntries(
        Object.entries(reasons)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 5),
      );
      out.hist = latency.hist.toJSON();
      out.timings = clients.map((c) => ({
        transport: c.transport,
        topic: c.topic,
        dups: c.dups,
        gaps: c.gaps,
        missing: c.missing,
        openedAt: c.openedAt,
        ackAt: c.ackAt,
        firstAt: c.firstAt,
        reachedAt: c.reachedAt,
        liveAt: c.liveAt,
        reconnectAt: c.reconnectAt,
        received: c.received,
        startSeq: c.startSeq,
        last: c.last,
      }));
    }
    return out;
  },

  /**
   * Final check against what was stored: `lastSeq` (broadcast clients must have every seq up to it) and
   * `seqsByTopic` (topic clients must have exactly their topic's seqs after their start, up to lastSeq, plus
   * `broadcastSeqs` when they also watch the broadcast subject). Only seqs after `fromSeq` count for topic
   * clients (one phase of several). Adds what never came to `missing`; `unexpected` counts seqs a topic client
   * got that it should not have.
   */
  verify({ lastSeq, seqsByTopic, broadcastSeqs = [], fromSeq = 0 }) {
    const out = {
      clients: clients.length,
      incomplete: 0,
      missingAtEnd: 0,
      dups: 0,
      gaps: 0,
      missing: 0,
      unexpected: 0,
    };
    for (const c of clients) {
      out.dups += c.dups;
      out.gaps += c.gaps;
      out.missing += c.missing;
      if (c.startSeq === null) continue;
      if (c.topic === null) {
        if (c.last < lastSeq) {
          out.incomplete++;
          out.missingAtEnd += lastSeq - c.last;
          out.missing += lastSeq - c.last;
        }
        continue;
      }
      const after = Math.max(c.startSeq, fromSeq);
      const mine =
        c.subjects.length > 1 ? [...(seqsByTopic?.[c.topic] ?? []), ...broadcastSeqs] : (seqsByTopic?.[c.topic] ?? []);
      const expected = mine.filter((s) => s > after && s <= lastSeq);
      const got = new Set(c.seqs);
      let missing = 0;
      for (const s of expected) if (!got.has(s)) missing++;
      const want = new Set(expected);
      for (const s of c.seqs) if (s > after && s <= lastSeq && !want.has(s)) out.unexpected++;
      if (missing) {
        out.incomplete++;
        out.missing += missing;
        // A seq missing before the last one received is a gap; after it, the client never caught up.
        const lastGot = c.seqs.at(-1) ?? c.startSeq;
        const atEnd = expected.filter((s) => s > lastGot).length;
        out.missingAtEnd += atEnd;
        out.gaps += missing - atEnd;
      }
    }
    return out;
  },

  /**
   * Reconnect storm: every client drops its connection at once, then all reconnect with their last cursor as the
   * SDK does (packages/client/src/backoff.ts: the first attempt after one backoff step, 125–250 ms; a reconnect
   * that fails is retried from 250 ms, doubling up to 10 s, jittered between half and all of each step) until
   * `timeoutMs` has passed. Opening all of a process's sockets in one synchronous loop instead blocked it for
   * seconds before the first connection left, while the gateway sat idle.
   * Returns when the reconnects were started; `stats().live` counts clients live again (a delivery published
   * after their resubscribe was acked has arrived, so everything before it came first).
   */
  storm({ timeoutMs = 60_000 }) {
    const at = nowMs();
    for (const c of clients) dropClient(c);
    for (const c of clients) {
      c.reconnectAt = at;
      c.ackAt = Infinity;
      c.liveAt = 0;
      c.awaitLive = true;
      void reconnect(c, at + timeoutMs);
    }
    return { at };
  },

  closeAll() {
    for (const c of clients) closeClient(c);
    clients.length = 0;
    return null;
  },

  exit() {
    for (const c of clients) closeClient(c);
  },
});
