/**
 * The stored event: a CloudEvents 1.0 JSON envelope (docs/protocol.md), and the checks a JSON body passes first.
 * Pure: no Nest or NATS import.
 */

export interface CloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  datacontenttype?: string;
  /** URL of the schema version the data was validated against, when it was. */
  dataschema?: string;
  data?: unknown;
  data_base64?: string;
  /** Extension attribute (lower-case letters only, per the spec): the configured source name. */
  hookstreamsource?: string;
}

export interface EnvelopeArgs {
  id: string;
  /** CloudEvents `source`, e.g. `/webhooks/acme`. */
  source: string;
  sourceName?: string;
  type: string;
  /** Receive time. */
  timeMs: number;
  contentType: string | undefined;
  /** The parsed body when it is JSON (see parseJsonBody); undefined otherwise. */
  json: unknown | undefined;
  body: Buffer;
}

/**
 * JSON (args.json !== undefined) → `data` with `datacontenttype: application/json`; anything else is kept
 * byte-exact in `data_base64` with the request's content type (default `application/octet-stream`).
 */
export function buildEnvelope(args: EnvelopeArgs): CloudEvent {
  const event: CloudEvent = {
    specversion: '1.0',
    id: args.id,
    source: args.source,
    type: args.type,
    time: new Date(args.timeMs).toISOString(),
  };
  if (args.json !== undefined) {
    event.datacontenttype = 'application/json';
    event.data = args.json;
  } else {
    event.datacontenttype = args.contentType?.trim() || 'application/octet-stream';
    event.data_base64 = args.body.toString('base64');
  }
  if (args.sourceName !== undefined) event.hookstreamsource = args.sourceName;
  return event;
}

/**
 * Room in a stored event for everything besides the body's base64: the envelope's fixed fields; its id, type and
 * content type, which come from request headers (Node reads at most 16 KiB of them; JSON escaping at most
 * doubles that); and the message's Nats-Msg-Id header, made from the same headers.
 */
export const STORED_EVENT_OVERHEAD_BYTES = 64 * 1024;

/**
 * The largest stored event (envelope bytes plus message id) the ingest path sends for bodies of at most
 * `maxBodyBytes`: a body that is not JSON is kept as base64 (4 bytes per 3). The ingest path refuses anything
 * larger (JSON whose numbers grow when re-encoded, e.g. `1e9`), so the store can be sized to this bound.
 */
export function maxStoredEventBytes(maxBodyBytes: number): number {
  return 4 * Math.ceil(maxBodyBytes / 3) + STORED_EVENT_OVERHEAD_BYTES;
}

// `application/json` or `application/<anything>+json`, subtype made of RFC 9110 token characters.
const JSON_TYPE = /^application\/(?:[!#$%&'*+.^_`|~0-9a-z-]+\+)?json$/;

/** `application/json` or `application/*+json`, parameters allowed, case-insensitive. */
export function isJsonContentType(ct: string | undefined): boolean {
  if (typeof ct !== 'string') return false;
  const semi = ct.indexOf(';');
  const type = (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase();
  return JSON_TYPE.test(type);
}

export type JsonParseResult = { ok: true; value: unknown } | { ok: false; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Whether arrays and objects nest deeper than maxDepth (`[]` is depth 1, a scalar 0): one linear pass over the
 * bytes, skipping string contents, stopping as soon as the bound is passed. Multi-byte UTF-8 sequences never
 * contain ASCII bytes, so scanning bytes is exact.
 */
function exceedsDepth(body: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (inString) {
      if (b === 0x5c /* \ */) i++;
      else if (b === 0x22 /* " */) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b /* [ */ || b === 0x7b /* { */) {
      if (++depth > maxDepth) return true;
    } else if (b === 0x5d /* ] */ || b === 0x7d /* } */) depth--;
  }
  return false;
}

/**
 * A body declared JSON: valid UTF-8 without BOM, nesting no deeper than maxDepth (checked before JSON.parse, so
 * a pathologically deep body never reaches the parser), then valid JSON.
 */
export function parseJsonBody(body: Buffer, maxDepth: number): JsonParseResult {
  if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) {
    return { ok: false, reason: 'a UTF-8 byte order mark is not allowed in JSON' };
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ok: false, reason: 'the body is not valid UTF-8' };
  }
  if (exceedsDepth(body, maxDepth)) {
    return { ok: false, reason: `the JSON is nested deeper than ${maxDepth} levels` };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, reason: 'the body is not valid JSON' };
  }
}
