#!/usr/bin/env node
// A developer loop like `stripe listen`: reads a gateway's SSE stream and POSTs every event, signed as Standard
// Webhooks, to a URL on this machine. No public URL and no endpoint to register. `--help` says what it does and
// what it does not promise.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { Webhook } from 'standardwebhooks';

const VERSION = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version;
const USER_AGENT = `Hookstream-listen/${VERSION}`;
/** The gateway sends a keep-alive comment every 15 s: this much silence means the connection is dead. */
const IDLE_MS = 45_000;
/** Reconnect backoff: doubling from the first to the last, with jitter (as the browser SDK does). */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;
/** Delay before the first retry of a failed POST; doubled for each further one. */
const RETRY_BASE_MS = 500;

const HELP = `Forwards events from a Hookstream gateway to a local URL, signed as Standard Webhooks.

  npm run listen -- --forward-to <url> [options]

Options
  --forward-to <url>   where to POST each event (http or https); required
  --subject <pattern>  subject pattern to subscribe to, repeatable (default: events.>)
  --url <url>          the gateway (default: http://localhost:3000)
  --token <token>      a JWT or API key for the stream (default: $HOOKSTREAM_TOKEN; none: the anonymous grant)
  --from <start>       latest (default: new events only), earliest, an RFC 3339 time, or a cursor to resume after
  --secret <whsec_…>   signing secret (default: a new one, printed at start)
  --retries <n>        retries of a failed POST before it is reported and skipped (default: 3)
  --timeout <seconds>  time allowed for one POST (default: 10)
  --help               this text

Each request is a POST of the event's CloudEvents envelope with the headers webhook-id (the envelope id),
webhook-timestamp, webhook-signature (v1), hookstream-cursor, hookstream-attempt and user-agent
${USER_AGENT}. stdout gets one line per event: time, subject, id, status (or "failed: …"), duration.
Everything else (the secret, connections, gap notices, retries, the resume cursor) goes to stderr.

What it does: forwards in stream order, one event at a time; retries a failed POST (non-2xx, refused,
timed out) a few times, 0.5 s, 1 s, 2 s … apart; reconnects after a dropped stream and resumes after the
last event it handled, so a gateway restart loses nothing; prints a gap notice when events after that point
are no longer stored; prints the cursor to resume from on Ctrl-C.

What it does not promise: it is a development tool, not the gateway's outbound delivery. An event whose
POST still fails after the retries is reported and skipped, not kept for later. Its position lives only in
this process: events stored while it is not running are not sent unless you start again with
--from <cursor>. A request the receiver handled but whose answer was lost (a timeout, Ctrl-C twice) may be
sent again: deduplicate on webhook-id.`;

class UsageError extends Error {}

/** Parses and checks the command line; throws UsageError with a message for people. */
function parseOptions(argv, env) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'forward-to': { type: 'string' },
        subject: { type: 'string', multiple: true },
        url: { type: 'string', default: 'http://localhost:3000' },
        token: { type: 'string' },
        from: { type: 'string', default: 'latest' },
        secret: { type: 'string' },
        retries: { type: 'string', default: '3' },
        timeout: { type: 'string', default: '10' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (values.help) return { help: true };
  if (!values['forward-to']) throw new UsageError('--forward-to <url> is required');
  const forwardTo = httpUrl(values['forward-to'], '--forward-to');
  const gateway = httpUrl(values.url, '--url');
  const subjects = values.subject ?? ['events.>'];
  if (subjects.some((s) => s.trim() === '')) throw new UsageError('--subject may not be empty');
  const retries = Number(values.retries);
  if (!Number.isInteger(retries) || retries < 0 || retries > 20) throw new UsageError('--retries must be 0 to 20');
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 300)
    throw new UsageError('--timeout must be a number of seconds, above 0 and at most 300');
  const secret = values.secret ?? `whsec_${randomBytes(24).toString('base64')}`;
  checkSecret(secret);
  // The gateway tells a start point from a cursor by the parameter it arrives in: `from=` takes the named
  // starts and times, anything else is a cursor (and the gateway refuses it if it does not decode).
  const start = values.from;
  const isStartPoint = start === 'earliest' || start === 'latest' || /^\d{4}-\d{2}-\d{2}T/.test(start);
  return {
    help: false,
    forwardTo,
    gateway,
    subjects,
    token: values.token ?? env.HOOKSTREAM_TOKEN ?? undefined,
    from: isStartPoint ? start : undefined,
    cursor: isStartPoint ? undefined : start,
    secret,
    generatedSecret: values.secret === undefined,
    retries,
    timeoutMs: timeout * 1000,
  };
}

function httpUrl(text, flag) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${flag} is not a URL: ${text}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${flag} must be http or https`);
  return url;
}

/** The same rule the gateway applies to endpoint secrets: `whsec_` + base64 of 24 to 64 bytes. */
function checkSecret(secret) {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  const bytes = m ? Buffer.from(m[1], 'base64') : Buffer.alloc(0);
  if (!m || m[1].length % 4 !== 0 || bytes.length < 24 || bytes.length > 64)
    throw new UsageError('--secret must be whsec_ followed by the base64 of 24 to 64 bytes');
}

const note = (text) => process.stderr.write(`${text}\n`);

/** Waits `ms`, or less if `signal` aborts first. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** A short reason for a failed fetch: the system error's code where there is one. */
function describeError(err) {
  if (err?.name === 'TimeoutError') return 'timed out';
  const code = err?.cause?.code ?? err?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code) return code;
  return err?.cause?.message ?? err?.message ?? String(err);
}

/** Refusals that a retry cannot fix: bad subject, cursor, credentials or grant. */
const FATAL_STATUSES = new Set([400, 401, 403, 404]);

class Listener {
  /** The position after the last event handled (forwarded or given up on): where a reconnect resumes. */
  cursor;
  stopping = false;
  #stop = new AbortController();
  #connection;
  #signer;

  constructor(opts) {
    this.opts = opts;
    this.cursor = opts.cursor;
    this.#signer = new Webhook(opts.secret);
  }

  /** Ends the stream and any retry wait; a POST already on the wire is allowed to finish. */
  stop() {
    this.stopping = true;
    this.#stop.abort();
    this.#connection?.abort();
  }

  /** Runs until stop(); resolves with an exit code: 0 stopped, 2 refused by the gateway, 1 a protocol error. */
  async run() {
    let failures = 0;
    while (!this.stopping) {
      const result = await this.#connectOnce();
      if (this.stopping) break;
      if (result.fatal) {
        note(`listen: ${result.reason}`);
        return result.fatal;
      }
      if (result.connected) failures = 0;
      // `shutdown`: this gateway is draining, another one (or its restart) can take the stream at once.
      const delay = result.prompt ? 0 : backoff(failures++);
      note(`! stream ${result.reason}; reconnecting${delay ? ` in ${(delay / 1000).toFixed(1)} s` : ''}`);
      await pause(delay, this.#stop.signal);
    }
    return 0;
  }

  async #connectOnce() {
    const { gateway, subjects, token, from } = this.opts;
    const url = new URL('/v1/stream', gateway);
    for (const s of subjects) url.searchParams.append('subject', s);
    const headers = { accept: 'text/event-stream', 'user-agent': USER_AGENT };
    if (token) headers.authorization = `Bearer ${token}`;
    // Once a position is known, it wins over the start point: a reconnect resumes exactly after it.
    if (this.cursor) headers['last-event-id'] = this.cursor;
    else url.searchParams.set('from', from);

    const connection = new AbortController();
    this.#connection = connection;
    let res;
    try {
      res = await fetch(url, { headers, signal: connection.signal });
    } catch (err) {
      return { reason: `could not connect to ${gateway.origin} (${describeError(err)})` };
    }
    if (res.status !== 200) {
      const text = await res.text().catch(() => '');
      let detail = text.slice(0, 200);
      try {
        const body = JSON.parse(text);
        if (body?.error) detail = `${body.error}: ${body.message ?? ''}`;
      } catch {
        // not JSON: show the start of the text
      }
      const reason = `gateway answered ${res.status} (${detail})`;
      return { reason, fatal: FATAL_STATUSES.has(res.status) ? 2 : 0 };
    }

    const reader = res.body
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream({ onError: 'terminate' }))
      .getReader();
    let connected = false;
    try {
      for (;;) {
        // Reading one frame at a time, and only after the previous event was handled, leaves the rest in the
        // socket: TCP back-pressure reaches the gateway instead of piling up here.
        const idle = setTimeout(() => connection.abort(new Error('idle')), IDLE_MS);
        let next;
        try {
          next = await reader.read();
        } finally {
          clearTimeout(idle);
        }
        if (next.done) return { reason: 'ended', connected };
        const frame = next.value;
        switch (frame.event) {
          case 'ready': {
            const ready = parseJson(frame.data, 'ready');
            if (!connected)
              note(`> Ready: ${subjects.join(' ')} from ${gateway.origin} -> ${this.opts.forwardTo.href}`);
            connected = true;
            this.cursor = ready.cursor ?? frame.id ?? this.cursor;
            note(`> stream starts after cursor ${this.cursor}`);
            break;
          }
          case 'gap': {
            const gap = parseJson(frame.data, 'gap');
            note(
              `! gap: the events after ${gap.from} are no longer stored; continuing from ${gap.resumeCursor} ` +
                '(events in between are lost)',
            );
            this.cursor = gap.resumeCursor;
            break;
          }
          case 'closing': {
            const closing = parseJson(frame.data, 'closing');
            return {
              reason: `closed by the gateway (${closing.reason})`,
              connected,
              prompt: closing.reason === 'shutdown',
            };
          }
          case undefined:
          case 'message': {
            const delivery = parseJson(frame.data, 'delivery');
            const handled = await this.#forward(delivery);
            if (!handled) return { reason: 'stopped', connected };
            this.cursor = delivery.cursor;
            break;
          }
          default:
          // A frame type this version does not know: newer gateways may add some.
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) return { reason: err.message, fatal: 1 };
      const reason = connection.signal.reason?.message === 'idle' ? `silent for ${IDLE_MS / 1000} s` : 'dropped';
      return { reason: `${reason} (${describeError(err)})`, connected };
    } finally {
      connection.abort();
      reader.cancel().catch(() => undefined);
    }
  }

  /**
   * POSTs one delivery, retrying a few times, and prints its line. False when stopped before it succeeded or ran
   * out of retries: it is not handled then, so the resume cursor stays before it and it is sent again.
   */
  async #forward(delivery) {
    const { forwardTo, retries, timeoutMs } = this.opts;
    const event = delivery.event;
    const id = String(event?.id ?? '');
    const body = JSON.stringify(event);
    let outcome;
    let attempt = 0;
    for (;;) {
      attempt += 1;
      const now = new Date();
      const headers = {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
        'webhook-signature': this.#signer.sign(id, now, body),
        'hookstream-cursor': delivery.cursor,
        'hookstream-attempt': String(attempt),
        'user-agent': USER_AGENT,
      };
      const started = performance.now();
      try {
        const res = await fetch(forwardTo, {
          method: 'POST',
          headers,
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        outcome = { ok: res.status >= 200 && res.status < 300, status: String(res.status) };
      } catch (err) {
        outcome = { ok: false, status: describeError(err) };
      }
      outcome.ms = Math.round(performance.now() - started);
      if (outcome.ok || attempt > retries || this.stopping) break;
      const delay = RETRY_BASE_MS * 2 ** (attempt - 1);
      note(`! ${id}: attempt ${attempt} failed (${outcome.status}); retrying in ${(delay / 1000).toFixed(1)} s`);
      await pause(delay, this.#stop.signal);
      if (this.stopping) break;
    }
    if (!outcome.ok && this.stopping) return false;
    const status = outcome.ok ? outcome.status : `failed: ${outcome.status} after ${attempt} attempts`;
    const tries = outcome.ok && attempt > 1 ? ` (attempt ${attempt})` : '';
    process.stdout.write(
      `${new Date().toISOString()}  ${delivery.subject}  ${id}  ${status}  ${outcome.ms} ms${tries}\n`,
    );
    return true;
  }
}

class ProtocolError extends Error {}

function parseJson(text, what) {
  try {
    const value = JSON.parse(text ?? '');
    if (value && typeof value === 'object') return value;
  } catch {
    // reported below
  }
  throw new ProtocolError(`the gateway sent a ${what} frame that is not a JSON object: ${String(text).slice(0, 200)}`);
}

function backoff(failures) {
  const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** failures);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

async function main() {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    note(`listen: ${err.message}\nRun with --help for the options.`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (opts.generatedSecret) note(`> Your webhook signing secret is ${opts.secret} (pass --secret to keep one)`);
  else note('> Signing with the secret given by --secret');

  const listener = new Listener(opts);
  const onSignal = () => {
    if (listener.stopping) {
      // A second Ctrl-C: do not wait for the POST on the wire.
      printResume(listener.cursor);
      process.exit(130);
    }
    note('> stopping (Ctrl-C again to quit at once)');
    listener.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const code = await listener.run();
  if (code === 0) printResume(listener.cursor);
  return code;
}

function printResume(cursor) {
  if (cursor) note(`> Stopped. Resume with --from ${cursor}`);
  else note('> Stopped before the stream started.');
}

// Exit explicitly: idle keep-alive sockets to the receiver must not hold the process open.
process.exit(await main());
