/**
 * What the endpoint API accepts: the caller, body shape, fields, URL (syntax and, unless private networks are
 * allowed, where its host resolves), patterns inside the caller's grant, options, list limits and `from`. Each check
 * throws the OutboundError the API answers with; nothing here writes anything.
 */
import { randomBytes } from 'node:crypto';
import { decodeCursor, parseStart } from '../events/cursor.js';
import { allowedBy, isValidPattern } from '../events/pattern.js';
import type { EventStore } from '../store/event-store.port.js';
import { OutboundError, type EndpointRecord } from './endpoint.js';
import { checkHeaders, parseEndpointUrl } from './endpoint-rules.js';
import { firstBlockedAddress, type Resolver } from './ssrf-guard.js';

/** Who calls the API: an API key and what it may do. */
export interface Caller {
  keyId: string;
  subscribe: string[];
  endpoints: boolean;
  admin: boolean;
}

const MAX_PATTERNS = 32;
const MAX_LIST_LIMIT = 1000;
export const MAX_REDELIVER_IDS = 1000;
export const CREATE_FIELDS = new Set([
  'url',
  'patterns',
  'description',
  'from',
  'ordering',
  'maxInFlight',
  'rateLimit',
  'headers',
  'secret',
]);
export const PATCH_FIELDS = new Set([
  'url',
  'patterns',
  'description',
  'status',
  'ordering',
  'maxInFlight',
  'rateLimit',
  'headers',
]);
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export const bad = (message: string) => new OutboundError('invalid_request', message);

export function newId(prefix: string): string {
  const bytes = randomBytes(20);
  let s = prefix;
  for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return s;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function checkFields(body: Record<string, unknown>, allowed: Set<string>): void {
  const unknown = Object.keys(body).filter((k) => !allowed.has(k));
  if (unknown.length) throw bad(`unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
}

export function requireManager(caller: Caller): void {
  if (!caller.admin && !caller.endpoints) {
    throw new OutboundError(
      'forbidden',
      'this API key may not manage endpoints (it needs endpoints: true or admin: true)',
    );
  }
}

export async function checkUrl(value: unknown, allowPrivate: boolean, resolver: Resolver): Promise<string> {
  if (value === undefined) throw bad('url is required');
  if (typeof value !== 'string') throw bad('url must be a string');
  const parsed = parseEndpointUrl(value, allowPrivate);
  if (!parsed.ok) throw new OutboundError('invalid_url', parsed.reason);
  if (!allowPrivate) {
    let blocked: string | null;
    try {
      blocked = await firstBlockedAddress(parsed.url.hostname, resolver);
    } catch (err) {
      throw new OutboundError('invalid_url', `the url's host does not resolve: ${(err as Error).message}`);
    }
    if (blocked)
      throw new OutboundError(
        'invalid_url',
        `the url's host resolves to a private, loopback or reserved address (${blocked})`,
      );
  }
  return value;
}

export function checkPatterns(caller: Caller, value: unknown): string[] {
  if (value === undefined) throw bad('patterns is required');
  if (!Array.isArray(value) || !value.every((p) => typeof p === 'string'))
    throw bad('patterns must be an array of strings');
  if (value.length === 0) throw new OutboundError('invalid_subject', 'patterns must hold at least one pattern');
  if (value.length > MAX_PATTERNS) throw bad(`at most ${MAX_PATTERNS} patterns`);
  const patterns = value as string[];
  const invalid = patterns.find((p) => !isValidPattern(p));
  if (invalid !== undefined)
    throw new OutboundError('invalid_subject', `${JSON.stringify(invalid)} is not a valid subject pattern`);
  if (!caller.admin) {
    const outside = patterns.find((p) => !allowedBy(caller.subscribe, p));
    if (outside !== undefined) {
      throw new OutboundError('forbidden', `${JSON.stringify(outside)} is not inside this API key's subscribe grant`);
    }
  }
  return [...new Set(patterns)];
}

/** description, ordering, maxInFlight, rateLimit and headers of a create or a PATCH (over `base`). */
export function checkOptions(body: Record<string, unknown>, base: Pick<EndpointRecord, 'ordering' | 'maxInFlight'>) {
  if (body.description !== undefined && (typeof body.description !== 'string' || body.description.length > 1024)) {
    throw bad('description must be a string of at most 1024 characters');
  }
  if (body.ordering !== undefined && body.ordering !== 'unordered' && body.ordering !== 'fifo') {
    throw bad('ordering must be "unordered" or "fifo"');
  }
  const ordering = (body.ordering as EndpointRecord['ordering'] | undefined) ?? base.ordering;
  const mif = body.maxInFlight;
  if (mif !== undefined && (typeof mif !== 'number' || !Number.isInteger(mif) || mif < 1 || mif > 1000)) {
    throw bad('maxInFlight must be an integer from 1 to 1000');
  }
  if (ordering === 'fifo' && mif !== undefined && mif !== 1) throw bad('a fifo endpoint has maxInFlight 1');
  const maxInFlight =
    ordering === 'fifo'
      ? 1
      : ((mif as number | undefined) ??
        (body.ordering === 'unordered' && base.ordering === 'fifo' ? 16 : base.maxInFlight));
  const rl = body.rateLimit;
  if (rl !== undefined && rl !== null && (typeof rl !== 'number' || !Number.isFinite(rl) || rl <= 0 || rl > 100_000)) {
    throw bad('rateLimit must be a positive number of deliveries per second, or null');
  }
  const headers = checkHeaders(body.headers);
  if (!headers.ok) throw bad(headers.reason);
  return { ordering, maxInFlight, headers: headers.headers };
}

/** `?limit=` of a listing. */
export function limitOf(query: Record<string, unknown>, dflt: number): number {
  const raw = query.limit;
  if (raw === undefined) return dflt;
  if (typeof raw !== 'string' || !/^\d{1,4}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIST_LIMIT) {
    throw bad(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
  }
  return Number(raw);
}

/** `from` of a create: latest (default), earliest, an RFC 3339 time or a cursor → the first sequence to deliver. */
export async function startSeqOf(store: EventStore, from: unknown): Promise<number> {
  if (from !== undefined && typeof from !== 'string')
    throw new OutboundError('invalid_cursor', 'from must be a string');
  const value = from ?? 'latest';
  const cursor = decodeCursor(value);
  const start = cursor ? null : parseStart(value);
  if (!cursor && !start) {
    throw new OutboundError('invalid_cursor', 'from must be "latest", "earliest", an RFC 3339 time or a cursor');
  }
  const state = await store.state();
  if (cursor) {
    if (cursor.epoch !== state.epoch) throw new OutboundError('invalid_cursor', 'the cursor belongs to another stream');
    return cursor.seq + 1;
  }
  if (start!.kind === 'earliest') return state.firstSeq;
  if (start!.kind === 'latest') return state.lastSeq + 1;
  return store.seqAtTime(start!.ms);
}
