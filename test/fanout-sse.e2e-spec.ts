/**
 * Issue "Fan-out over Socket.IO and SSE with gap-free replay", the SSE side: headers and exact frames (raw
 * reader), resume by Last-Event-ID and cursor= with the `eventsource` package as a browser uses it, refusals,
 * token expiry, gap notices (purge, a cursor of another epoch), keep-alives, and a client that stops reading
 * while 50,000 events flow. Run on both event stores (a real nats-server, and the embedded log).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { waitFor } from './lib/wait.mjs';
import { describeEachStore, type StoreInspector } from './support/backends.js';
import {
  BrowserStream,
  SseReader,
  expectStrictlyIncreasing,
  forceGc,
  heapUsedAfterGc,
  publishBatch,
  signJwt,
  streamUrl,
  subscriberAuth,
  subscriberToken,
  type Delivery,
  type PublishResult,
  type SseFrame,
} from './support/clients.js';
import { uniqueStreamName } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { E2E_SOURCES, post, standardWebhook } from './support/signers.js';

// The project-level testTimeout does not reach tests in ESM mode; set it here.
jest.setTimeout(60_000);

interface Accepted {
  id: string;
  subject: string;
  seq: number;
  cursor: string;
}

const fileConfig = (streamName: string, extra: Record<string, unknown> = {}, limits: Record<string, unknown> = {}) => ({
  stream: { name: streamName },
  sources: E2E_SOURCES,
  auth: subscriberAuth(),
  limits: { ringEvents: 256, patternsPerSubscription: 4, ...limits },
  ...extra,
});

async function ingest(url: string, type: string, data: Record<string, unknown> = {}): Promise<Accepted> {
  const res = await post(url, standardWebhook({ type, ...data }));
  if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as Accepted;
}

async function ingestMany(url: string, n: number, prefix: string): Promise<Accepted[]> {
  const out: Accepted[] = [];
  for (let i = 0; i < n; i++) out.push(await ingest(url, `${prefix}.step${i}`, { n: i }));
  return out;
}

const isReady = (frames: SseFrame[]) => frames.some((f) => f.event === 'ready');

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
}

describeEachStore('fan-out over SSE', (backend) => {
  let gw: RunningGateway;
  let stream: string;
  let token: string;
  let idle: SseReader;
  const readers: SseReader[] = [];
  const browsers: BrowserStream[] = [];

  const openReader = async (url: string, opts: Parameters<typeof SseReader.open>[1] = {}) => {
    const r = await SseReader.open(url, opts);
    readers.push(r);
    return r;
  };
  const openBrowser = (url: string, opts: ConstructorParameters<typeof BrowserStream>[1] = {}) => {
    const b = new BrowserStream(url, opts);
    browsers.push(b);
    return b;
  };

  beforeAll(async () => {
    await backend.setup();
    stream = uniqueStreamName('FANSSE');
    gw = await startGateway(backend.configFor(fileConfig(stream)));
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
    token = await subscriberToken(['events.acme.>']);
    // Left open for the whole suite: its keep-alive comment is checked at the end.
    idle = await SseReader.open(streamUrl(gw.url, { subject: 'events.idle.>' }), {
      token: await subscriberToken(['events.>']),
    });
  }, 30_000);

  afterEach(() => {
    for (const r of readers.splice(0)) r.close();
    for (const b of browsers.splice(0)) b.close();
  });

  afterAll(async () => {
    idle?.close();
    await gw?.close();
    await backend.teardown();
  }, 30_000);

  describe('frames and resume', () => {
    it('answers with the SSE headers, `retry: 2000`, then `event: ready` whose id is the start cursor, then deliveries', async () => {
      const r = await openReader(streamUrl(gw.url, { subject: 'events.acme.>' }), { token });
      expect(r.status).toBe(200);
      expect(r.header('content-type')).toMatch(/^text\/event-stream\b/);
      expect(r.header('cache-control')).toMatch(/\bno-cache\b/);
      expect(r.header('x-accel-buffering')).toBe('no');

      await r.waitForFrames(isReady, 'ready frame');
      expect(r.frames[0]).toEqual({ retry: '2000', fields: [['retry', '2000']] });
      const ready = r.frames[1];
      expect(ready.event).toBe('ready');
      expect(typeof ready.id).toBe('string');
      expect(JSON.parse(ready.data as string)).toEqual({ cursor: ready.id });

      const sent = await ingestMany(gw.url, 2, 'frames');
      const got = await r.waitForDeliveries(2);
      const frames = r.frames.slice(2);
      expect(frames).toHaveLength(2);
      frames.forEach((f, i) => {
        expect(f.fields.map(([name]) => name).sort()).toEqual(['data', 'id']);
        expect(f.id).toBe(sent[i].cursor);
        const d = JSON.parse(f.data as string) as Delivery;
        expect(Object.keys(d).sort()).toEqual(['cursor', 'event', 'seq', 'subject']);
        expect(d).toMatchObject({ cursor: sent[i].cursor, seq: sent[i].seq, subject: `events.acme.frames.step${i}` });
        expect(d.event).toMatchObject({
          specversion: '1.0',
          id: sent[i].id,
          source: '/webhooks/acme',
          type: `frames.step${i}`,
        });
      });
      expect(got.map((d) => d.seq)).toEqual(sent.map((s) => s.seq));

      // The ready id is exact: resuming from it gives the same deliveries.
      const again = await openReader(streamUrl(gw.url, { subject: 'events.acme.>', cursor: ready.id }), { token });
      await again.waitForDeliveries(2);
      expect(again.named('ready')[0].id).toBe(ready.id);
      expect(again.deliveries().map((d) => d.seq)).toEqual(sent.map((s) => s.seq));
    });

    it('the eventsource client resumes by Last-Event-ID after a dropped connection: exactly the missed five, then live', async () => {
      const es = openBrowser(streamUrl(gw.url, { subject: 'events.acme.>' }), { token });
      await waitFor(() => es.readies.length === 1, { message: 'first ready' });
      const first = await ingestMany(gw.url, 5, 'es.first');
      await es.waitForMessages(5);
      expect(es.seqs()).toEqual(first.map((f) => f.seq));
      for (const m of es.messages) expect(m.lastEventId).toBe(m.data.cursor);

      // Drop the connection and keep the client away while five more are stored.
      es.hold();
      es.cut();
      await waitFor(() => es.errors >= 1 && es.es.readyState === es.es.CONNECTING, { message: 'client reconnecting' });
      const missed = await ingestMany(gw.url, 5, 'es.missed');
      es.release();
      await waitFor(() => es.readies.length === 2, { message: 'reconnected (second ready)' });
      // The package sent the last id it saw, as a browser does, and the stream starts exactly there.
      expect(es.requests[1].lastEventId).toBe(first[4].cursor);
      expect(es.readies[1].cursor).toBe(first[4].cursor);
      await es.waitForMessages(10);
      const live = await ingestMany(gw.url, 2, 'es.live');
      await es.waitForMessages(12);
      expect(es.seqs()).toEqual([...first, ...missed, ...live].map((a) => a.seq));
      expect(es.requests).toHaveLength(2);

      // cursor= in the URL (and the token in access_token=, as a browser must send it) resumes the same way.
      const byCursor = openBrowser(
        streamUrl(gw.url, { subject: 'events.acme.>', cursor: first[4].cursor, access_token: token }),
      );
      await byCursor.waitForMessages(7);
      expect(byCursor.readies[0].cursor).toBe(first[4].cursor);
      expect(byCursor.seqs()).toEqual([...missed, ...live].map((a) => a.seq));
    });

    it('lets the Last-Event-ID header win over cursor= and from=', async () => {
      const a = await ingestMany(gw.url, 3, 'lei');
      const r = await openReader(
        streamUrl(gw.url, { subject: 'events.acme.lei.*', cursor: a[1].cursor, from: 'latest' }),
        {
          token,
          lastEventId: a[0].cursor,
        },
      );
      await r.waitForDeliveries(2);
      expect(r.named('ready')[0].id).toBe(a[0].cursor);
      expect(r.deliveries().map((d) => d.seq)).toEqual([a[1].seq, a[2].seq]);
    });

    it('starts at an RFC 3339 time, inclusively', async () => {
      await ingest(gw.url, 'timed.before');
      // Store times have millisecond resolution: step past the previous event's millisecond before taking `at`.
      const prev = Date.now();
      await waitFor(() => Date.now() > prev + 1, { message: 'clock step' });
      const at = new Date().toISOString();
      const after = await ingestMany(gw.url, 2, 'timed.after');
      const r = await openReader(streamUrl(gw.url, { subject: 'events.acme.timed.>', from: at }), { token });
      await r.waitForDeliveries(2);
      expect(r.deliveries().map((d) => d.seq)).toEqual(after.map((x) => x.seq));
    });

    it('carries several subject= patterns on one stream', async () => {
      const r = await openReader(streamUrl(gw.url, { subject: ['events.acme.multi.*', 'events.other.multi'] }), {
        token: await subscriberToken(['events.>']),
      });
      await r.waitForFrames(isReady, 'ready');
      const a = await ingest(gw.url, 'multi.a');
      const [o] = await publishBatch(gw.url, [{ subject: 'events.other.multi', data: {} }]);
      await publishBatch(gw.url, [{ subject: 'events.other.unrelated', data: {} }]);
      const b = await ingest(gw.url, 'multi.b');
      await r.waitForDeliveries(3);
      expect(r.deliveries().map((d) => d.seq)).toEqual([a.seq, o.seq, b.seq]);
    });
  });

  describe('refusals', () => {
    it.each<
      [
        string,
        () => Promise<{ url: string; token?: string; lastEventId?: string; headers?: Record<string, string> }>,
        number,
        string,
      ]
    >([
      [
        'a pattern outside the grant',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.>' }), token }),
        403,
        'forbidden',
      ],
      [
        'one forbidden pattern among allowed ones',
        async () => ({ url: streamUrl(gw.url, { subject: ['events.acme.>', 'events.billing.>'] }), token }),
        403,
        'forbidden',
      ],
      [
        'no credentials while the anonymous grant is empty',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.acme.>' }) }),
        401,
        'unauthorized',
      ],
      [
        'a garbage token',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.acme.>' }), token: 'garbage' }),
        401,
        'unauthorized',
      ],
      [
        'a JWT signed with another secret',
        async () => ({
          url: streamUrl(gw.url, { subject: 'events.acme.>' }),
          token: await subscriberToken(['events.acme.>'], { secret: 'another-secret-0123456789-abcdefghijkl' }),
        }),
        401,
        'unauthorized',
      ],
      [
        'a JWT without the subscribe claim',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.acme.>' }), token: await signJwt({}) }),
        401,
        'unauthorized',
      ],
      [
        'an expired JWT',
        async () => ({
          url: streamUrl(gw.url, { subject: 'events.acme.>' }),
          token: await subscriberToken(['events.acme.>'], { exp: Math.floor(Date.now() / 1000) - 60 }),
        }),
        401,
        'unauthorized',
      ],
      [
        'a bad access_token',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.acme.>', access_token: 'garbage' }) }),
        401,
        'unauthorized',
      ],
      [
        'an Authorization header that is not Bearer',
        async () => ({
          url: streamUrl(gw.url, { subject: 'events.acme.>' }),
          headers: { Authorization: `Basic ${btoa('a:b')}` },
        }),
        401,
        'unauthorized',
      ],
      [
        'an invalid pattern',
        async () => ({ url: streamUrl(gw.url, { subject: 'events..x' }), token }),
        400,
        'invalid_subject',
      ],
      [
        '`>` not last',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.>.x' }), token }),
        400,
        'invalid_subject',
      ],
      [
        'a garbage cursor',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.acme.>', cursor: 'garbage' }), token }),
        400,
        'invalid_cursor',
      ],
      [
        'a garbage Last-Event-ID',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.acme.>' }), token, lastEventId: 'garbage' }),
        400,
        'invalid_cursor',
      ],
      [
        'from that is no start point',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.acme.>', from: 'yesterday' }), token }),
        400,
        'invalid_cursor',
      ],
      [
        'two cursor= values',
        async () => ({ url: streamUrl(gw.url, { subject: 'events.acme.>', cursor: ['a_1', 'a_2'] }), token }),
        400,
        'invalid_request',
      ],
      [
        'more subject= than patternsPerSubscription',
        async () => ({
          url: streamUrl(gw.url, {
            subject: ['events.acme.a', 'events.acme.b', 'events.acme.c', 'events.acme.d', 'events.acme.e'],
          }),
          token,
        }),
        400,
        'limit_exceeded',
      ],
    ])('refuses %s', async (_name, make, status, error) => {
      const { url, ...opts } = await make();
      const r = await openReader(url, opts);
      expect(r.status).toBe(status);
      expect(r.header('content-type')).toMatch(/^application\/json/);
      expect(r.body).toEqual({ error, message: expect.any(String) });
    });

    it('refuses a request without any subject= with 400', async () => {
      const r = await openReader(`${gw.url}/v1/stream`, { token });
      expect(r.status).toBe(400);
      expect(['invalid_subject', 'invalid_request']).toContain((r.body as { error: string }).error);
    });

    it('answers alike ahead of Express and through it: a trailing slash opens the same stream, subject[]= is no subject', async () => {
      // The exact path is served ahead of Express's router; a trailing slash goes through it.
      const slash = await openReader(`${gw.url}/v1/stream/?subject=events.acme.%3E`, { token });
      expect(slash.status).toBe(200);
      await slash.waitForFrames(isReady, 'ready frame');
      const sent = await ingestMany(gw.url, 1, 'forms');
      expect((await slash.waitForDeliveries(1))[0].seq).toBe(sent[0].seq);
      const answers = [];
      for (const path of ['/v1/stream', '/v1/stream/']) {
        const r = await openReader(`${gw.url}${path}?subject%5B%5D=events.acme.%3E`, { token });
        answers.push([r.status, r.header('content-type'), r.body]);
      }
      expect(answers[0][0]).toBe(400);
      expect(answers[1]).toEqual(answers[0]);
    });

    it('accepts an API key as the bearer token, within its grant', async () => {
      const ok = await openReader(streamUrl(gw.url, { subject: 'events.acme.>' }), {
        token: 'rk_e2e_reader_0123456789abcdef',
      });
      expect(ok.status).toBe(200);
      const wide = await openReader(streamUrl(gw.url, { subject: 'events.>' }), {
        token: 'rk_e2e_reader_0123456789abcdef',
      });
      expect(wide.status).toBe(403);
    });

    it('ends the stream with `event: closing` {"reason":"token_expired"} at the token exp', async () => {
      const exp = Math.floor(Date.now() / 1000) + 2;
      const r = await openReader(streamUrl(gw.url, { subject: 'events.acme.>' }), {
        token: await subscriberToken(['events.acme.>'], { exp }),
      });
      expect(r.status).toBe(200);
      await r.waitForFrames(isReady, 'ready');
      const a = await ingest(gw.url, 'expiry.before');
      await r.waitForDeliveries(1);
      expect(r.deliveries()[0].seq).toBe(a.seq);
      await r.waitForEnd(10_000);
      const last = r.frames[r.frames.length - 1];
      expect(last.event).toBe('closing');
      expect(JSON.parse(last.data as string)).toEqual({ reason: 'token_expired' });
    });
  });

  describe('gap notices', () => {
    // A store of its own (JetStream: a nats-server of its own, as two streams on one server cannot both hold
    // `events.>`).
    const gapBackend = backend.sibling();
    let gapGw: RunningGateway;
    let fresh: RunningGateway;
    let gapInspect: StoreInspector;
    let before: PublishResult[];
    let after: PublishResult[];
    let gapToken: string;

    beforeAll(async () => {
      await gapBackend.setup();
      const gapStream = uniqueStreamName('SSEGAP');
      gapGw = await startGateway(gapBackend.configFor(fileConfig(gapStream)));
      await waitFor(async () => (await fetch(`${gapGw.url}/readyz`)).status === 200, { message: 'gap gateway ready' });
      gapInspect = await gapBackend.inspector(gapGw, gapStream);
      gapToken = await subscriberToken(['events.gap.>']);
      const watcher = await SseReader.open(streamUrl(gapGw.url, { subject: 'events.gap.>' }), { token: gapToken });
      try {
        await watcher.waitForFrames(isReady, 'ready');
        before = await publishBatch(
          gapGw.url,
          Array.from({ length: 5 }, (_, i) => ({ subject: 'events.gap.x', data: { i } })),
        );
        await watcher.waitForDeliveries(5);
        await gapBackend.purge(gapGw, gapStream);
        expect(await gapInspect.count()).toBe(0);
        after = await publishBatch(
          gapGw.url,
          Array.from({ length: 3 }, (_, i) => ({ subject: 'events.gap.x', data: { i: 5 + i } })),
        );
        await watcher.waitForDeliveries(8);
      } finally {
        watcher.close();
      }
      // A gateway that never held the purged events in memory.
      fresh = await gapBackend.startPeer(gapGw, fileConfig(gapStream));
      await waitFor(async () => (await fetch(`${fresh.url}/readyz`)).status === 200, {
        message: 'fresh gateway ready',
      });
    }, 30_000);

    afterAll(async () => {
      await gapInspect?.close();
      await fresh?.close();
      await gapGw?.close();
      await gapBackend.teardown();
    }, 30_000);

    it.each<[string, () => string]>([
      ['on a gateway that never saw the lost events', () => fresh.url],
      ['on the gateway that saw them live', () => gapGw.url],
    ])('sends `event: gap` first, then the oldest stored event onward (%s)', async (_name, url) => {
      const r = await openReader(streamUrl(url(), { subject: 'events.gap.>', cursor: before[1].cursor }), {
        token: gapToken,
      });
      await r.waitForDeliveries(after.length);
      const afterReady = r.frames.slice(r.frames.findIndex((f) => f.event === 'ready') + 1);
      expect(afterReady[0].event).toBe('gap');
      expect(JSON.parse(afterReady[0].data as string)).toEqual({
        from: before[1].cursor,
        resumeCursor: before[4].cursor,
      });
      expect(r.named('gap')).toHaveLength(1);
      expect(r.deliveries().map((d) => d.seq)).toEqual(after.map((a) => a.seq));
    });

    it('sends `event: gap` first for a Last-Event-ID of another epoch (a recreated stream)', async () => {
      const foreign = 'zzzzzzzzzzzzzzzz_3';
      expect(foreign.slice(0, foreign.indexOf('_'))).not.toBe(before[0].cursor.slice(0, before[0].cursor.indexOf('_')));
      const r = await openReader(streamUrl(gapGw.url, { subject: 'events.gap.>' }), {
        token: gapToken,
        lastEventId: foreign,
      });
      await r.waitForDeliveries(after.length);
      const afterReady = r.frames.slice(r.frames.findIndex((f) => f.event === 'ready') + 1);
      expect(afterReady[0].event).toBe('gap');
      expect(JSON.parse(afterReady[0].data as string)).toEqual({ from: foreign, resumeCursor: before[4].cursor });
      expect(r.named('gap')).toHaveLength(1);
      expect(r.deliveries().map((d) => d.seq)).toEqual(after.map((a) => a.seq));
    });

    it('gives no second notice from resumeCursor (as Last-Event-ID), and replays everything retained from from=earliest', async () => {
      const resumed = await openReader(streamUrl(fresh.url, { subject: 'events.gap.>' }), {
        token: gapToken,
        lastEventId: before[4].cursor,
      });
      const earliest = await openReader(streamUrl(fresh.url, { subject: 'events.gap.>', from: 'earliest' }), {
        token: gapToken,
      });
      await resumed.waitForDeliveries(after.length);
      await earliest.waitForDeliveries(after.length);
      expect(earliest.named('ready')[0].id).toBe(before[4].cursor);
      const [sentinel] = await publishBatch(fresh.url, [{ subject: 'events.gap.x', data: { sentinel: true } }]);
      await resumed.waitForDeliveries(after.length + 1);
      await earliest.waitForDeliveries(after.length + 1);
      for (const r of [resumed, earliest]) {
        expect(r.named('gap')).toEqual([]);
        expect(r.deliveries().map((d) => d.seq)).toEqual([...after.map((a) => a.seq), sentinel.seq]);
      }
    });
  });

  describe('a client that stops reading', () => {
    const slowBackend = backend.sibling();
    let slowGw: RunningGateway;
    const TOTAL = 50_000;
    const BATCH = 1000;

    beforeAll(async () => {
      await slowBackend.setup();
      slowGw = await startGateway(
        slowBackend.configFor(
          fileConfig(
            uniqueStreamName('SSESLOW'),
            { ingest: { maxBodyBytes: '4MB' } },
            { ringEvents: 1000, clientBufferEvents: 256 },
          ),
        ),
      );
      await waitFor(async () => (await fetch(`${slowGw.url}/readyz`)).status === 200, {
        message: 'slow gateway ready',
      });
    }, 30_000);

    afterAll(async () => {
      await slowGw?.close();
      await slowBackend.teardown();
    }, 30_000);

    it('does not grow the heap past its bound while 50,000 events flow, and then still gets every event once, in order', async () => {
      const slowToken = await subscriberToken(['events.slow.>']);
      // Deliveries are reduced to seqs as they arrive, so the test's own memory stays small.
      const seqs: number[] = [];
      const closings: string[] = [];
      const onFrame = (f: SseFrame) => {
        if (f.event === undefined && f.data !== undefined) seqs.push((JSON.parse(f.data) as Delivery).seq);
        if (f.event === 'closing') closings.push((JSON.parse(f.data as string) as { reason: string }).reason);
      };
      let reader = await SseReader.open(streamUrl(slowGw.url, { subject: 'events.slow.>' }), {
        token: slowToken,
        keepFrames: false,
        onFrame,
      });
      readers.push(reader);
      await waitFor(() => reader.lastSeenId !== undefined, { message: 'ready' });
      reader.pause();

      const gcForced = forceGc() !== null;
      const baseline = heapUsedAfterGc();
      let peak = baseline;
      const published: number[] = [];
      const pad = 'x'.repeat(1000);
      for (let b = 0; b < TOTAL / BATCH; b++) {
        const items = Array.from({ length: BATCH }, (_, k) => ({
          subject: 'events.slow.tick',
          data: { i: b * BATCH + k, pad },
        }));
        for (const r of await publishBatch(slowGw.url, items)) published.push(r.seq);
        if (b % 5 === 4) peak = Math.max(peak, heapUsedAfterGc());
      }
      const lastSeq = published[published.length - 1];
      await waitFor(async () => (await metric(slowGw.url, 'hookstream_live_sequence')) >= lastSeq, {
        timeoutMs: 30_000,
        message: 'live tap caught up with the publisher',
      });
      peak = Math.max(peak, heapUsedAfterGc());
      const growthMb = (peak - baseline) / 2 ** 20;
      // An unbounded per-client queue would hold ≥ 50,000 × ~1.1 KB frames (≥ 55 MB) here. The bound is the
      // ring (1,000 events) plus one client buffer (256) plus one store page: a few MB.
      process.stderr.write(
        `slow consumer: heap growth ${growthMb.toFixed(1)} MB (gc ${gcForced ? 'forced' : 'not available'}), ` +
          `${seqs.length} delivered while paused, slow-consumer fallbacks ${await metric(slowGw.url, 'hookstream_slow_consumer_fallbacks_total')}\n`,
      );
      expect(growthMb).toBeLessThan(gcForced ? 24 : 48);
      expect(seqs.length).toBe(0);
      expect(await metric(slowGw.url, 'hookstream_slow_consumer_fallbacks_total')).toBeGreaterThanOrEqual(1);

      // Read again: every event arrives by catch-up, or by resuming if the gateway closed the stream.
      reader.resume();
      let resumes = 0;
      await waitFor(
        async () => {
          if (seqs.length >= TOTAL) return true;
          if (reader.ended) {
            resumes++;
            reader = await SseReader.open(streamUrl(slowGw.url, { subject: 'events.slow.>' }), {
              token: slowToken,
              lastEventId: reader.lastSeenId,
              keepFrames: false,
              onFrame,
            });
            readers.push(reader);
          }
          return false;
        },
        { timeoutMs: 60_000, intervalMs: 100, message: `${TOTAL} deliveries (have ${seqs.length})` },
      );
      expect(resumes).toBeLessThan(20);
      // The only reason the gateway may give for ending this stream is slow_consumer (resume by cursor).
      expect(closings.filter((r) => r !== 'slow_consumer')).toEqual([]);
      expect(seqs.length).toBe(TOTAL);
      expectStrictlyIncreasing(seqs);
      expect(seqs).toEqual(published);
    }, 150_000);
  });

  it('sends a `: keep-alive` comment on an idle stream', async () => {
    expect(idle.status).toBe(200);
    await waitFor(() => idle.comments.some((c) => c.trim() === 'keep-alive'), {
      timeoutMs: 20_000,
      message: 'keep-alive comment',
    });
    expect(idle.ended).toBe(false);
  }, 30_000);
});
