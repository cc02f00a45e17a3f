// `npm run listen`'s command line: the --help text, the options parsed and checked (a UsageError with a message
// for people when they are wrong), the signing secret generated or checked, and the User-Agent the listener
// sends. Apart from the loop itself (scripts/listen.mjs) so that each file has one job.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const VERSION = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
export const USER_AGENT = `Hookstream-listen/${VERSION}`;

export const HELP = `Forwards events from a Hookstream gateway to a local URL, signed as Standard Webhooks.

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

export class UsageError extends Error {}

/** Parses and checks the command line; throws UsageError with a message for people. */
export function parseOptions(argv, env) {
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
