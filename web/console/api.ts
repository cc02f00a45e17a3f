/**
 * The console's calls to the gateway's own HTTP API (`/v1/...`), authenticated as every API call is: with the
 * key typed into the Token field, as `Authorization: Bearer <key>`. A refusal becomes an ApiError carrying the
 * status and the body's `error: message`.
 */
import { $ } from './dom.js';

const token = $<HTMLInputElement>('token');

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The key typed into Token ('' when none). */
export function typedKey(): string {
  return token.value.trim();
}

/** A GET (or, with `post`, a POST of JSON) to the gateway with the key; resolves to the JSON answer. */
export async function apiCall<T>(path: string, key: string, post?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (post !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: post === undefined ? 'GET' : 'POST',
    headers,
    body: post === undefined ? undefined : JSON.stringify(post),
    cache: 'no-store',
  });
  const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  if (!res.ok) throw new ApiError(res.status, `${body.error ?? res.status}: ${body.message ?? res.statusText}`);
  return body as T;
}

/** What a view says when a read failed: a 401 means the typed token is not an API key. */
export function refusalText(err: unknown, opts: { hint?: string; who?: string } = {}): string {
  if (err instanceof ApiError && err.status === 401)
    return `The token is not an accepted API key (${err.message}).${opts.hint ? ` ${opts.hint}` : ''}`;
  return `${opts.who ?? 'The gateway'} answered ${err instanceof Error ? err.message : String(err)}`;
}
