/**
 * Issue "Verified webhook ingest": every acceptance point, on both event stores (JetStream on a real nats-server,
 * and the embedded log), with signatures made by the providers' own libraries and what is stored read back past
 * the gateway (the NATS API, or the embedded store itself). NATS outages and JetStream's duplicate window are
 * JetStream-only cases.
 */
import { createHash, createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { waitFor } from './harness/wait.js';
import { describeEachStore, itFor, type StoreInspector } from './support/backends.js';
import { uniqueStreamName } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { StreamInspector } from './support/nats-inspect.js';
import {
  E2E_SOURCES,
  RAW_SECRET,
  githubWebhook,
  post,
  standardWebhook,
  stripeWebhook,
  type SignedRequest,
} from './support/signers.js';

describeEachStore('ingest', (backend) => {
  let gw: RunningGateway;
  let inspect: StoreInspector;
  let stream: string;
  const fileConfig = (extra: Record<string, unknown> = {}) => ({
    stream: { name: stream, duplicateWindow: '1s' },
    ingest: { maxBodyBytes: '64KB', publishTimeout: '1500ms' },
    sources: E2E_SOURCES,
    ...extra,
  });

  beforeAll(async () => {
    await backend.setup();
    stream = uniqueStreamName('INGEST');
    gw = await startGateway(backend.configFor(fileConfig()));
    await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, { message: 'gateway ready' });
    inspect = await backend.inspector(gw, stream);
  });

  afterAll(async () => {
    await inspect?.close();
    await gw?.close();
    await backend.teardown();
  });

  describe('accepted deliveries', () => {
    it('stores a Standard Webhooks delivery as a CloudEvent and answers 202 with id, subject, seq, cursor', async () => {
      const payload = { type: 'invoice.paid', data: { amount: 4200, currency: 'eur' } };
      const req = standardWebhook(payload, { id: 'msg_acme_1' });
      const res = await post(gw.url, req);
      expect(res.status).toBe(202);
      expect(res.body).toEqual({
        status: 'accepted',
        id: 'msg_acme_1',
        subject: 'events.acme.invoice.paid',
        seq: expect.any(Number),
        cursor: expect.any(String),
      });
      const stored = await inspect.get(res.body.seq);
      expect(stored?.subject).toBe('events.acme.invoice.paid');
      expect(stored?.msgId).toBe('acme:msg_acme_1');
      expect(stored?.envelope).toMatchObject({
        specversion: '1.0',
        id: 'msg_acme_1',
        source: '/webhooks/acme',
        type: 'invoice.paid',
        datacontenttype: 'application/json',
      });
      expect(Date.parse(stored?.envelope.time as string)).not.toBeNaN();
      expect(stored?.envelope.data).toEqual(payload);
    });

    it('stores a Stripe delivery signed by stripe.webhooks.generateTestHeaderString', async () => {
      const event = {
        id: 'evt_e2e_1',
        object: 'event',
        type: 'invoice.payment_succeeded',
        data: { object: { id: 'in_1' } },
      };
      const res = await post(gw.url, stripeWebhook(event));
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({
        status: 'accepted',
        id: 'evt_e2e_1',
        subject: 'events.stripe.invoice.payment_succeeded',
      });
      const stored = await inspect.get(res.body.seq);
      expect(stored?.msgId).toBe('stripe:evt_e2e_1');
      expect(stored?.envelope.type).toBe('invoice.payment_succeeded');
      expect(stored?.envelope.data).toEqual(event);
    });

    it('stores a GitHub delivery signed by @octokit/webhooks-methods, typed by event and action', async () => {
      const payload = { action: 'opened', issue: { number: 7, title: 'Hello' } };
      const req = await githubWebhook('issues', payload, {
        hookId: '123',
        delivery: '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      });
      const res = await post(gw.url, req);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({
        id: '123:72d3162e-cc78-11e3-81ab-4c9367dc0958',
        subject: 'events.github.issues.opened',
      });
      const stored = await inspect.get(res.body.seq);
      // GitHub signs neither the hook id nor the delivery guid: the idempotency key is the signed body's hash.
      expect(stored?.msgId).toBe(`github:${createHash('sha256').update(req.body).digest('hex')}`);
      expect(stored?.envelope.data).toEqual(payload);
    });

    it('keeps a text body that is not JSON in data_base64 with its content type', async () => {
      const text = 'plain text body, not JSON: {"a": 1';
      const req = standardWebhook(text, { id: 'msg_text_1' });
      req.headers['content-type'] = 'text/plain; charset=utf-8';
      const res = await post(gw.url, req);
      expect(res.status).toBe(202);
      expect(res.body.subject).toBe('events.acme.webhook');
      const stored = await inspect.get(res.body.seq);
      expect(stored?.envelope.datacontenttype).toBe('text/plain; charset=utf-8');
      expect(stored?.envelope.data).toBeUndefined();
      expect(Buffer.from(stored?.envelope.data_base64 as string, 'base64').toString('utf8')).toBe(text);
    });

    it('keeps binary bytes (not UTF-8) byte-exact, on a generic hmac source', async () => {
      const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x41, 0x0a, 0xc3]);
      const sig = createHmac('sha256', RAW_SECRET).update(bytes).digest('hex');
      const res = await fetch(`${gw.url}/webhooks/raw`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'x-signature': `sha256=${sig}`, 'x-delivery': 'bin-1' },
        body: bytes,
      });
      expect(res.status).toBe(202);
      const json = (await res.json()) as { seq: number; subject: string; id: string };
      expect(json.id).toBe('bin-1');
      expect(json.subject).toBe('events.raw.webhook');
      const stored = await inspect.get(json.seq);
      expect(stored?.envelope.datacontenttype).toBe('application/octet-stream');
      expect(Buffer.from(stored?.envelope.data_base64 as string, 'base64')).toEqual(bytes);
    });
  });

  describe('refusals store nothing', () => {
    const refusals: [string, () => Promise<{ status: number; body: any }>, number, string][] = [
      [
        'the official Standard Webhooks vector (timestamp from 2021)',
        () =>
          post(gw.url, {
            path: '/webhooks/acme',
            headers: {
              'content-type': 'application/json',
              'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
              'webhook-timestamp': '1614265330',
              'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
            },
            body: '{"test": 2432232314}',
          }),
        401,
        'timestamp_out_of_tolerance',
      ],
      [
        'a bad signature',
        () => {
          const req = standardWebhook({ type: 'x' });
          req.headers['webhook-signature'] = 'v1,' + Buffer.alloc(32, 7).toString('base64');
          return post(gw.url, req);
        },
        401,
        'invalid_signature',
      ],
      [
        'a body changed after signing',
        () => {
          const req = standardWebhook({ type: 'x', n: 1 });
          req.body = req.body.replace('1', '2');
          return post(gw.url, req);
        },
        401,
        'invalid_signature',
      ],
      [
        'missing signature headers',
        () => {
          const req = standardWebhook({ type: 'x' });
          delete req.headers['webhook-signature'];
          return post(gw.url, req);
        },
        401,
        'missing_signature',
      ],
      [
        'a missing webhook-id',
        () => {
          const req = standardWebhook({ type: 'x' });
          delete req.headers['webhook-id'];
          return post(gw.url, req);
        },
        401,
        'missing_signature',
      ],
      [
        'an unknown source',
        () => post(gw.url, { ...standardWebhook({ type: 'x' }), path: '/webhooks/nope' }),
        404,
        'unknown_source',
      ],
      [
        'a nested path',
        () => post(gw.url, { ...standardWebhook({ type: 'x' }), path: '/webhooks/acme/extra' }),
        404,
        'unknown_source',
      ],
      [
        'an encoded slash',
        () => post(gw.url, { ...standardWebhook({ type: 'x' }), path: '/webhooks/ac%2Fme' }),
        404,
        'unknown_source',
      ],
      [
        'an oversized body',
        () => post(gw.url, standardWebhook({ type: 'x', blob: 'a'.repeat(70 * 1024) })),
        413,
        'payload_too_large',
      ],
      ['malformed JSON, validly signed', () => post(gw.url, standardWebhook('{"type": "x", ')), 400, 'invalid_payload'],
      [
        'JSON nested deeper than maxJsonDepth',
        () => post(gw.url, standardWebhook('['.repeat(101) + ']'.repeat(101))),
        400,
        'invalid_payload',
      ],
    ];

    it.each(refusals)('%s', async (_name, send, status, code) => {
      const before = await inspect.lastSeq();
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.body).toEqual({ error: code, message: expect.any(String) });
      expect(await inspect.lastSeq()).toBe(before);
    });
  });

  describe('idempotency', () => {
    it('answers a re-sent delivery (new timestamp, new signature) 200 duplicate and stores it once', async () => {
      const first = await post(gw.url, standardWebhook({ type: 'order.created', n: 1 }, { id: 'msg_dup_1' }));
      expect(first.status).toBe(202);
      const later = new Date(Date.now() + 2000);
      const again = await post(
        gw.url,
        standardWebhook({ type: 'order.created', n: 1 }, { id: 'msg_dup_1', date: later }),
      );
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ status: 'duplicate', id: 'msg_dup_1', seq: first.body.seq });
      const all = await inspect.all();
      expect(all.filter((m) => m.msgId === 'acme:msg_dup_1')).toHaveLength(1);
      expect(all.filter((m) => m.id === 'msg_dup_1')).toHaveLength(1);
    });

    // JetStream-only: its own duplicate window, and a second gateway on the same stream.
    itFor(
      backend,
      ['jetstream'],
      'still recognises it after the duplicate window, on a second gateway and after a restart',
      async () => {
        const first = await post(gw.url, standardWebhook({ type: 'order.created' }, { id: 'msg_dup_2' }));
        expect(first.status).toBe(202);
        // The behaviour under test is "after JetStream's 1 s duplicate window has passed".
        await new Promise((r) => setTimeout(r, 1500));
        const second = await startGateway(backend.configFor(fileConfig()));
        try {
          const viaSecond = await post(second.url, standardWebhook({ type: 'order.created' }, { id: 'msg_dup_2' }));
          expect(viaSecond.status).toBe(200);
          expect(viaSecond.body).toMatchObject({ status: 'duplicate', seq: first.body.seq });
        } finally {
          await second.close();
        }
        const restarted = await startGateway(backend.configFor(fileConfig()));
        try {
          const afterRestart = await post(restarted.url, stripeWebhook({ id: 'evt_never_seen', type: 'x' }));
          expect(afterRestart.status).toBe(202);
          const viaRestarted = await post(
            restarted.url,
            standardWebhook({ type: 'order.created' }, { id: 'msg_dup_2' }),
          );
          expect(viaRestarted.status).toBe(200);
          expect(viaRestarted.body).toMatchObject({ status: 'duplicate', seq: first.body.seq });
        } finally {
          await restarted.close();
        }
        const all = await inspect.all();
        expect(all.filter((m) => m.msgId === 'acme:msg_dup_2')).toHaveLength(1);
        expect(all.filter((m) => m.id === 'msg_dup_2')).toHaveLength(1);
      },
    );

    it('exposes the idempotency records still to be written on /metrics (JetStream only: embedded writes them with the event)', async () => {
      const metric = async () => {
        const text = await (await fetch(`${gw.url}/metrics`)).text();
        const value = (name: string) => {
          const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
          return m ? Number(m[1]) : undefined;
        };
        return {
          pending: value('hookstream_idempotency_records_pending'),
          dropped: value('hookstream_idempotency_records_dropped_total'),
        };
      };
      const res = await post(gw.url, standardWebhook({ type: 'order.created' }, { id: 'msg_metrics_1' }));
      expect(res.status).toBe(202);
      if (backend.kind === 'embedded') {
        expect(await metric()).toEqual({ pending: undefined, dropped: undefined });
        return;
      }
      // Written within moments of the answer: nothing stays pending, nothing is dropped.
      await waitFor(async () => (await metric()).pending === 0, { message: 'no idempotency record pending' });
      expect(await metric()).toEqual({ pending: 0, dropped: 0 });
    });

    // The embedded log has no duplicate window and one owner per DATA_DIR: a restart on the same directory.
    itFor(backend, ['embedded'], 'still recognises it after the gateway restarts on the same DATA_DIR', async () => {
      const config = backend.configFor(fileConfig());
      const first = await startGateway(config);
      let accepted: { status: number; body: any };
      try {
        accepted = await post(first.url, standardWebhook({ type: 'order.created' }, { id: 'msg_dup_3' }));
        expect(accepted.status).toBe(202);
      } finally {
        await first.close();
      }
      const restarted = await startGateway(backend.configFor(fileConfig(), config));
      try {
        const fresh = await post(restarted.url, stripeWebhook({ id: 'evt_after_restart', type: 'x' }));
        expect(fresh.status).toBe(202);
        expect(fresh.body.seq).toBe(accepted.body.seq + 1);
        const again = await post(restarted.url, standardWebhook({ type: 'order.created' }, { id: 'msg_dup_3' }));
        expect(again.status).toBe(200);
        expect(again.body).toEqual({ status: 'duplicate', id: 'msg_dup_3', seq: accepted.body.seq });
        const stored = await (await backend.inspector(restarted, stream)).all();
        expect(stored.map((m) => [m.seq, m.msgId, m.id])).toEqual([
          [accepted.body.seq, 'acme:msg_dup_3', 'msg_dup_3'],
          [fresh.body.seq, 'stripe:evt_after_restart', 'evt_after_restart'],
        ]);
      } finally {
        await restarted.close();
      }
    });
  });

  it("answers on the fast path exactly as through Express's router", async () => {
    // `POST /webhooks/<name>` skips Express (webhook-fast-path.ts); with a query string the same request takes
    // the router and the controller. Every answer must match: status, headers that matter, body.
    const answer = (r: Awaited<ReturnType<typeof post>>) => ({
      status: r.status,
      type: r.headers.get('content-type'),
      lengthOfBody: Number(r.headers.get('content-length')) === Buffer.byteLength(JSON.stringify(r.body)),
      connection: r.headers.get('connection'),
      retryAfter: r.headers.get('retry-after'),
      body: JSON.stringify(r.body)
        .replace(/fp_(fast|rout)_/g, 'fp_X_')
        .replace(/"(seq|cursor)":("[^"]*"|\d+)/g, '"$1":_'),
    });
    const both = async (make: (id: string) => SignedRequest) => {
      const fast = await post(gw.url, make('fp_fast_1'));
      const viaRouter = make('fp_rout_1');
      viaRouter.path += '?via=router';
      const routed = await post(gw.url, viaRouter);
      expect(answer(fast)).toEqual(answer(routed));
      return fast;
    };
    const accepted = (id: string) => standardWebhook({ type: 'fast.path' }, { id });
    expect((await both(accepted)).status).toBe(202);
    expect((await both(accepted)).body).toMatchObject({ status: 'duplicate', seq: expect.any(Number) });
    const forged = (id: string) => {
      const r = accepted(id);
      r.headers['webhook-signature'] = 'v1,' + Buffer.alloc(32, 3).toString('base64');
      return r;
    };
    expect((await both(forged)).body.error).toBe('invalid_signature');
    expect((await both((id) => standardWebhook({ a: 1 }, { id, source: 'nope' }))).body.error).toBe('unknown_source');
    expect((await both((id) => standardWebhook('{"unclosed": ', { id }))).body.error).toBe('invalid_payload');
    const big = await both((id) => standardWebhook({ pad: 'x'.repeat(70 * 1024) }, { id }));
    expect(big).toMatchObject({ status: 413, body: { error: 'payload_too_large' } });
    expect(big.headers.get('connection')).toBe('close');
  });

  it('takes 200 concurrent distinct webhooks: 200 × 202, 200 messages, no duplicates', async () => {
    const before = await inspect.lastSeq();
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        post(gw.url, standardWebhook({ type: 'load.test', i }, { id: `msg_load_${i}` })),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(200).fill(202));
    const seqs = new Set(results.map((r) => r.body.seq));
    expect(seqs.size).toBe(200);
    const stored = (await inspect.all()).filter((m) => m.seq > before);
    expect(stored).toHaveLength(200);
    expect(new Set(stored.map((m) => m.msgId)).size).toBe(200);
  });

  it('never lets a crafted type or source put wildcards or extra tokens in a subject', async () => {
    const types = ['a.*.>', 'a b', '..', '', ' ', '*', '>', 'x/y.z', 'ünï.cødé', 'a'.repeat(50) + '.b'.repeat(40)];
    for (const [i, type] of types.entries()) {
      const res = await post(gw.url, standardWebhook({ type }, { id: `msg_crafted_${i}` }));
      expect(res.status).toBe(202);
      const subject: string = res.body.subject;
      expect(subject.startsWith('events.acme.')).toBe(true);
      const tokens = subject.split('.');
      expect(tokens.length).toBeLessThanOrEqual(18);
      for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_-]+$/);
      expect((await inspect.get(res.body.seq))?.subject).toBe(subject);
    }
    for (const path of [
      '/webhooks/..',
      '/webhooks/%2e%2e',
      '/webhooks/*',
      '/webhooks/%3E',
      '/webhooks/acme%2F..',
      '/webhooks/%C3%BC',
    ]) {
      const res = await post(gw.url, { ...standardWebhook({ type: 'x' }), path });
      expect(res.status).toBe(404);
    }
  });

  itFor(
    backend,
    ['jetstream'],
    'answers 503 with Retry-After while NATS is down, never 2xx, and recovers without a restart',
    async () => {
      const nats = backend.nats;
      const acked: number[] = [];
      for (let i = 0; i < 20; i++) {
        const res = await post(gw.url, standardWebhook({ type: 'outage.before', i }, { id: `msg_before_${i}` }));
        expect(res.status).toBe(202);
        acked.push(res.body.seq);
      }
      await nats.kill('SIGKILL');
      await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 503, { message: '/readyz 503' });
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const res = await post(gw.url, standardWebhook({ type: 'outage.during', i }, { id: `msg_during_${i}` }));
        expect(res.status).toBe(503);
        expect(res.body.error).toBe('unavailable');
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(Date.now() - started).toBeLessThan(6000);
      }
      await nats.restart();
      await waitFor(async () => (await fetch(`${gw.url}/readyz`)).status === 200, {
        timeoutMs: 20_000,
        message: 'ready again',
      });
      let recovered: { status: number; body: any } | undefined;
      await waitFor(
        async () => {
          recovered = await post(gw.url, standardWebhook({ type: 'outage.after' }, { id: 'msg_after_outage' }));
          return recovered.status === 202;
        },
        { timeoutMs: 20_000, message: 'ingest accepted again' },
      );
      expect(recovered?.status).toBe(202);
      const reopened = await StreamInspector.open(nats.url, stream);
      try {
        for (const seq of acked) expect((await reopened.get(seq))?.envelope.type).toBe('outage.before');
      } finally {
        await reopened.close();
      }
    },
  );
});
