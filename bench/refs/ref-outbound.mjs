// Bare outbound reference: the plainest honest webhook sender one could write on JetStream without
// Hookstream. One durable pull consumer per endpoint (filtered to its subjects, explicit ack), up to
// `maxInFlight` signed POSTs at once over a keep-alive agent, ack on 2xx, nak with the retry schedule's delay
// otherwise. Endpoints are added over a small control API: POST /endpoints {id, url, secret, patterns}.
//   node bench/refs/ref-outbound.mjs --port N --store jetstream --nats URL [--data DIR]
import { createHmac } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, store: { type: 'string' }, nats: { type: 'string' }, data: { type: 'string' } },
});
if (args.store !== 'jetstream') {
  process.stderr.write('ref-outbound: JetStream only\n');
  process.exit(2);
}

// The same schedule the bench gives the gateway (bench/scenarios/outbound.mjs).
const RETRY_MS = JSON.parse(process.env.REF_RETRY_MS ?? '[1000,2000,5000,10000]');
const MAX_IN_FLIGHT = Number(process.env.REF_MAX_IN_FLIGHT ?? 16);
const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });

const { connect } = await import('@nats-io/transport-node');
const { jetstream, jetstreamManager, AckPolicy, DeliverPolicy } = await import('@nats-io/jetstream');
const nc = await connect({ servers: args.nats });
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'] }).catch(() => undefined);
const js = jetstream(nc);

function post(url, headers, body) {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.setTimeout(15_000, () => req.destroy());
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function deliver(ep, msg) {
  const body = Buffer.from(msg.data);
  const id = JSON.parse(body).id;
  const ts = Math.floor(Date.now() / 1000);
  const sig = createHmac('sha256', ep.key).update(`${id}.${ts}.`).update(body).digest('base64');
  const status = await post(
    ep.url,
    {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(ts),
      'webhook-signature': `v1,${sig}`,
    },
    body,
  );
  if (status >= 200 && status < 300) msg.ack();
  else msg.nak(RETRY_MS[Math.min(msg.info.deliveryCount - 1, RETRY_MS.length - 1)]);
}

async function run(ep, consumer) {
  const messages = await consumer.consume({ max_messages: MAX_IN_FLIGHT * 2 });
  let inFlight = 0;
  let wake = null;
  for await (const msg of messages) {
    while (inFlight >= MAX_IN_FLIGHT) await new Promise((r) => (wake = r));
    inFlight++;
    void deliver(ep, msg).finally(() => {
      inFlight--;
      wake?.();
      wake = null;
    });
  }
}

async function addEndpoint({ id, url, secret, patterns }) {
  const name = `ep_${id}`;
  await jsm.consumers.add('EVENTS', {
    durable_name: name,
    filter_subject: patterns[0], // nats-server 2.9 takes one filter per consumer
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    max_ack_pending: MAX_IN_FLIGHT * 4,
    ack_wait: 30_000_000_000,
  });
  const ep = { url, key: Buffer.from(secret.slice('whsec_'.length), 'base64') };
  void run(ep, await js.consumers.get('EVENTS', name));
}

function reply(res, status, obj) {
  const text = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return reply(res, 200, { ok: true });
  if (req.method !== 'POST' || req.url !== '/endpoints') return reply(res, 404, { error: 'not_found' });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      await addEndpoint(JSON.parse(Buffer.concat(chunks)));
      reply(res, 201, { ok: true });
    } catch (err) {
      reply(res, 500, { error: String(err?.message ?? err) });
    }
  });
});
server.listen(Number(args.port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
