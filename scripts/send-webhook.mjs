#!/usr/bin/env node
// Signs a test webhook for one configured source, the way its provider would, and POSTs it.
//   npm run send -- [--source demo] [--type demo.ping] [--data '{"hello":"world"}'] [--url http://127.0.0.1:3000]
//                   [--config config/demo.yaml] [--id msg_123] [--curl]
// The source's scheme and first secret come from the config file (HOOKSTREAM_CONFIG, else config/demo.yaml).
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';

const { values: args } = parseArgs({
  options: {
    source: { type: 'string', default: 'demo' },
    type: { type: 'string', default: 'demo.ping' },
    data: { type: 'string' },
    url: { type: 'string', default: `http://127.0.0.1:${process.env.PORT ?? 3000}` },
    config: { type: 'string', default: process.env.HOOKSTREAM_CONFIG ?? 'config/demo.yaml' },
    id: { type: 'string' },
    curl: { type: 'boolean', default: false },
  },
});

const text = readFileSync(args.config, 'utf8').replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, n) => process.env[n] ?? '');
const source = (parse(text)?.sources ?? []).find((s) => s.name === args.source);
if (!source) {
  console.error(`no source "${args.source}" in ${args.config}`);
  process.exit(2);
}
const secret = String(source.secrets[0]);
const id = args.id ?? `msg_${randomUUID().replaceAll('-', '')}`;
const ts = Math.floor(Date.now() / 1000);
const data = args.data ? JSON.parse(args.data) : { hello: 'world', at: new Date().toISOString() };
const hmac = (alg, key, msg) => createHmac(alg, key).update(msg);

let body;
const headers = { 'content-type': 'application/json' };
switch (source.verifier) {
  case 'standard-webhooks': {
    body = JSON.stringify({ type: args.type, data });
    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
    headers['webhook-id'] = id;
    headers['webhook-timestamp'] = String(ts);
    headers['webhook-signature'] = `v1,${hmac('sha256', key, `${id}.${ts}.${body}`).digest('base64')}`;
    break;
  }
  case 'stripe':
    body = JSON.stringify({ id: args.id ?? `evt_${randomUUID().replaceAll('-', '')}`, object: 'event', type: args.type, data });
    headers['stripe-signature'] = `t=${ts},v1=${hmac('sha256', secret, `${ts}.${body}`).digest('hex')}`;
    break;
  case 'github':
    body = JSON.stringify(data);
    headers['x-github-event'] = args.type;
    headers['x-github-hook-id'] = '1';
    headers['x-github-delivery'] = randomUUID();
    headers['x-hub-signature-256'] = `sha256=${hmac('sha256', secret, body).digest('hex')}`;
    break;
  case 'shopify':
    body = JSON.stringify(data);
    headers['x-shopify-topic'] = args.type;
    headers['x-shopify-event-id'] = id;
    headers['x-shopify-hmac-sha256'] = hmac('sha256', secret, body).digest('base64');
    break;
  case 'slack':
    body = JSON.stringify({ type: 'event_callback', event_id: id, event: { type: args.type, ...data } });
    headers['x-slack-request-timestamp'] = String(ts);
    headers['x-slack-signature'] = `v0=${hmac('sha256', secret, `v0:${ts}:${body}`).digest('hex')}`;
    break;
  case 'hmac': {
    body = JSON.stringify({ type: args.type, data });
    const sig = hmac(source.algorithm ?? 'sha256', secret, body).digest(source.encoding ?? 'hex');
    headers[source.header.toLowerCase()] = `${source.prefix ?? ''}${sig}`;
    if (source.idHeader) headers[source.idHeader.toLowerCase()] = id;
    break;
  }
  default:
    console.error(`unknown verifier ${source.verifier}`);
    process.exit(2);
}

const url = `${args.url.replace(/\/$/, '')}/webhooks/${source.name}`;
if (args.curl) {
  const h = Object.entries(headers).map(([k, v]) => `-H '${k}: ${v}'`).join(' ');
  console.log(`curl -i -X POST ${url} ${h} --data-raw '${body.replaceAll("'", "'\\''")}'`);
  process.exit(0);
}
const res = await fetch(url, { method: 'POST', headers, body });
console.log(`${res.status} ${await res.text()}`);
process.exit(res.ok ? 0 : 1);
