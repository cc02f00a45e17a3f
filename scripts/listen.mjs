#!/usr/bin/env node
// A developer loop like `stripe listen`: reads a gateway's SSE stream and POSTs every event, signed as Standard
// Webhooks, to a URL on this machine. No public URL and no endpoint to register. `--help` says what it does and
// what it does not promise.
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { Webhook } from 'standardwebhooks';
import { HELP, parseOptions, USER_AGENT, UsageError } from './lib/listen-options.mjs';

/** The gateway sends a keep-alive comment every 15 s: this much silence means the connection is dead. */
const IDLE_MS = 45_000;
/** Reconnect backoff: doubling from the first to the last, with jitter (as the browser SDK does). */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;
/** Delay before the first retry of a failed POST; doubled for each further one. */
const RETRY_BASE_MS = 500;

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
