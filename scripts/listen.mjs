#!/usr/bin/env node
// A local developer loop for outbound webhooks, like `stripe listen`: reads a gateway's SSE stream and POSTs every
// event to a local URL, signed with Standard Webhooks headers, so a receiver can be built without a public URL.
//   npm run listen -- --forward-to http://localhost:4000/hooks [--subject 'events.>' …] [--token <api key or JWT>]
//                     [--url http://127.0.0.1:3000] [--secret whsec_…] [--cursor <cursor> | --from earliest]
// The signing secret (generated unless --secret) is printed at start; each forwarded event prints its cursor, and a
// restart with --cursor <last one> resumes right after it. Reconnects resume by cursor on their own.
import { createHmac, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    'forward-to': { type: 'string' },
    subject: { type: 'string', multiple: true },
    token: { type: 'string', default: process.env.HOOKSTREAM_TOKEN },
    url: { type: 'string', default: `http://127.0.0.1:${process.env.PORT ?? 3000}` },
    secret: { type: 'string' },
    cursor: { type: 'string' },
    from: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

const usage =
  "usage: npm run listen -- --forward-to <url> [--subject 'events.>' …] [--token <key>] [--url <gateway>] " +
  '[--secret whsec_…] [--cursor <cursor> | --from earliest|latest|<RFC 3339>]';
if (args.help || !args['forward-to']) {
  console.error(usage);
  process.exit(args.help ? 0 : 2);
}
let target;
try {
  target = new URL(args['forward-to']);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new Error('not http(s)');
} catch {
  console.error(`--forward-to must be an http(s) URL: ${args['forward-to']}`);
  process.exit(2);
}
const secret = args.secret ?? `whsec_${randomBytes(24).toString('base64')}`;
if (!/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret)) {
  console.error('--secret must be whsec_ followed by base64');
  process.exit(2);
}
const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
const subjects = args.subject?.length ? args.subject : ['events.>'];
let cursor = args.cursor;
let stopping = false;

const log = (line) => process.stdout.write(`${line}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

log(`> Forwarding ${subjects.join(', ')} from ${args.url} to ${target.href}`);
log(`> Signing secret: ${secret}`);

function sign(id, ts, body) {
  return `v1,${createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest('base64')}`;
}

/** POSTs one delivery, retrying a failing local receiver a few times before moving on. */
async function forward(delivery) {
  const body = JSON.stringify(delivery.event);
  const id = String(delivery.event?.id ?? `seq_${delivery.seq}`);
  for (let attempt = 1; attempt <= 5 && !stopping; attempt++) {
    const ts = Math.floor(Date.now() / 1000);
    try {
      const res = await fetch(target, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Hookstream-listen',
          'webhook-id': id,
          'webhook-timestamp': String(ts),
          'webhook-signature': sign(id, ts, body),
          'hookstream-cursor': delivery.cursor,
          'hookstream-attempt': String(attempt),
        },
        body,
      });
      await res.arrayBuffer().catch(() => undefined);
      log(`${new Date().toISOString()}  ${delivery.subject}  ${id}  -> ${res.status}  cursor ${delivery.cursor}`);
      if (res.status >= 200 && res.status < 300) return;
    } catch (err) {
      log(`${new Date().toISOString()}  ${delivery.subject}  ${id}  -> ${err.cause?.code ?? err.message}`);
    }
    await sleep(Math.min(5_000, 250 * 2 ** attempt));
  }
  log(`! gave up on ${id} after 5 attempts`);
}

/** One SSE connection; returns when it ends. Deliveries are forwarded one at a time, in order. */
async function stream() {
  const q = new URLSearchParams();
  for (const s of subjects) q.append('subject', s);
  if (cursor) q.set('cursor', cursor);
  else if (args.from) q.set('from', args.from);
  const headers = { accept: 'text/event-stream' };
  if (args.token) headers.authorization = `Bearer ${args.token}`;
  if (cursor) headers['last-event-id'] = cursor;
  const res = await fetch(`${args.url}/v1/stream?${q}`, { headers });
  if (!res.ok) {
    const text = await res.text();
    const fatal = res.status === 400 || res.status === 401 || res.status === 403;
    log(`! the gateway answered ${res.status}: ${text.slice(0, 300)}`);
    if (fatal) process.exit(1);
    return;
  }
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      let event = 'message';
      const data = [];
      for (const line of frame.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (!data.length) continue;
      const payload = JSON.parse(data.join('\n'));
      if (event === 'ready') {
        if (!cursor) log(`> Ready; resume later with --cursor ${payload.cursor}`);
        cursor ??= payload.cursor;
      } else if (event === 'gap') {
        log(`! gap: events after ${payload.from} are no longer stored; continuing from ${payload.resumeCursor}`);
        cursor = payload.resumeCursor;
      } else if (event === 'closing') {
        log(`> the gateway closed the stream (${payload.reason}); reconnecting`);
      } else if (event === 'message') {
        await forward(payload);
        cursor = payload.cursor;
      }
    }
  }
}

process.on('SIGINT', () => {
  stopping = true;
  log(`\n> Stopped. Resume with --cursor ${cursor ?? '(none yet)'} --secret ${secret}`);
  process.exit(0);
});

for (let failures = 0; !stopping;) {
  try {
    await stream();
    failures = 0;
  } catch (err) {
    failures++;
    if (failures === 1 || failures % 10 === 0) log(`! stream error: ${err.cause?.code ?? err.message}; reconnecting`);
  }
  await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 4)));
}
