/**
 * The HTTP client of outbound webhooks: one POST, no redirects followed, a hard deadline, the first 1 KB of the
 * answer kept. Keep-alive agents are shared by every endpoint; every new connection resolves through the SSRF guard's
 * `lookup`, and a literal-address URL is checked here before dialling (Node does not call `lookup` for those).
 */
import http from 'node:http';
import https from 'node:https';
import { BlockedAddressError, guardedLookup, isBlockedAddress, systemResolver, type Resolver } from './ssrf-guard.js';
import { literalHost } from './endpoint-rules.js';

export const RESPONSE_KEEP_BYTES = 1024;
/** Past this many answer bytes the connection is dropped instead of drained for reuse. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

export type AttemptError = 'timeout' | 'connection_failed' | 'blocked_address' | 'redirect' | (string & {});

export interface SendResult {
  /** The HTTP status, or null when no answer arrived. */
  status: number | null;
  error: AttemptError | null;
  /** The first 1 KB of the answer body (UTF-8, lossy). */
  response: string;
  /** A 429/503 answer's Retry-After, in ms; null when absent or unparsable. */
  retryAfterMs: number | null;
  durationMs: number;
}

export interface SenderOptions {
  timeoutMs: number;
  allowPrivateNetworks: boolean;
  resolver?: Resolver;
  /** Sockets per receiver host and agent; default 256. */
  maxSocketsPerHost?: number;
  now?: () => number;
}

/** Parses Retry-After: delta seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return null;
  return Math.max(0, t - nowMs);
}

function describe(err: unknown): AttemptError {
  if (err instanceof BlockedAddressError) return 'blocked_address';
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE'].includes(code))
      return 'connection_failed';
    if (code === 'EBLOCKEDADDRESS') return 'blocked_address';
    return code.slice(0, 64);
  }
  return String((err as Error)?.message ?? err).slice(0, 64);
}

export class HttpSender {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly lookup;
  private readonly now: () => number;

  constructor(private readonly options: SenderOptions) {
    const agentOptions = { keepAlive: true, maxSockets: options.maxSocketsPerHost ?? 256, scheduling: 'lifo' as const };
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent(agentOptions);
    this.lookup = guardedLookup(options.resolver ?? systemResolver, options.allowPrivateNetworks);
    this.now = options.now ?? Date.now;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** Sends one POST; never throws: every failure is a SendResult with an `error`. */
  send(target: URL, headers: Record<string, string>, body: Uint8Array): Promise<SendResult> {
    const started = this.now();
    const done = (r: Omit<SendResult, 'durationMs'>): SendResult => ({ ...r, durationMs: this.now() - started });
    const ip = literalHost(target);
    if (ip && !this.options.allowPrivateNetworks && isBlockedAddress(ip)) {
      return Promise.resolve(done({ status: null, error: 'blocked_address', response: '', retryAfterMs: null }));
    }
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      let status: number | null = null;
      let retryAfterMs: number | null = null;
      const kept: Buffer[] = [];
      let keptBytes = 0;
      const finish = (error: AttemptError | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(done({ status, error, response: Buffer.concat(kept).toString('utf8'), retryAfterMs }));
      };
      const isHttps = target.protocol === 'https:';
      const req = (isHttps ? https : http).request(target, {
        method: 'POST',
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        lookup: this.lookup,
        headers: { ...headers, 'content-length': String(body.byteLength) },
      });
      const timer = setTimeout(() => {
        finish('timeout');
        req.destroy();
      }, this.options.timeoutMs);
      req.on('error', (err) => finish(describe(err)));
      req.on('response', (res) => {
        status = res.statusCode ?? null;
        if (status === 429 || status === 503) {
          const h = res.headers['retry-after'];
          retryAfterMs = parseRetryAfter(Array.isArray(h) ? h[0] : h, this.now());
        }
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (keptBytes < RESPONSE_KEEP_BYTES) {
            const part = chunk.subarray(0, RESPONSE_KEEP_BYTES - keptBytes);
            kept.push(part);
            keptBytes += part.length;
          }
          if (total > DRAIN_LIMIT_BYTES) {
            res.destroy();
            finish(outcomeError(status));
          }
        });
        res.on('end', () => finish(outcomeError(status)));
        res.on('error', (err) => finish(status !== null ? outcomeError(status) : describe(err)));
        res.on('close', () => finish(outcomeError(status)));
      });
      req.end(body);
    });
  }
}

/** A 3xx is a failure of its own kind (`redirect`): the Location is never followed. */
function outcomeError(status: number | null): AttemptError | null {
  if (status !== null && status >= 300 && status < 400) return 'redirect';
  return null;
}
