/**
 * A raw SSE client for the e2e suites: node:http plus an incremental text/event-stream parser, so exact
 * frames, comments, refusals and TCP back-pressure are visible to the test.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { waitFor } from '../lib/wait.mjs';
import type { Delivery } from './contract-shapes.js';

/** One SSE block (fields up to a blank line), plus the comments seen since the previous block. */
export interface SseFrame {
  /** `event:` field; undefined for the default `message`. */
  event?: string;
  id?: string;
  /** `data:` lines joined with `\n`; undefined when the block had no data field. */
  data?: string;
  retry?: string;
  /** Every field in order, exactly as received (name, value). */
  fields: [string, string][];
}

/** Incremental parser for the text/event-stream format (WHATWG HTML §9.2.6). */
export class SseParser {
  private buffer = '';
  private fields: [string, string][] = [];

  constructor(
    private readonly onFrame: (frame: SseFrame) => void,
    private readonly onComment: (text: string) => void = () => undefined,
  ) {}

  feed(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) return;
      // A lone \r at the very end may be the first half of \r\n: wait for more input.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.fields.length === 0) return;
      const fields = this.fields;
      this.fields = [];
      const frame: SseFrame = { fields };
      const data: string[] = [];
      for (const [name, value] of fields) {
        if (name === 'event') frame.event = value;
        else if (name === 'id') frame.id = value;
        else if (name === 'retry') frame.retry = value;
        else if (name === 'data') data.push(value);
      }
      if (data.length) frame.data = data.join('\n');
      this.onFrame(frame);
      return;
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1).replace(/^ /, ''));
      return;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    this.fields.push([name, value]);
  }
}

export interface SseOpenOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  lastEventId?: string;
  headers?: Record<string, string>;
  /** Called for every frame as it is parsed. */
  onFrame?: (frame: SseFrame) => void;
  /** Keep frames in `frames` (default true; false for very long streams, with `onFrame`). */
  keepFrames?: boolean;
}

/** Builds `/v1/stream?subject=…&subject=…&cursor=…` (undefined values are left out). */
export function streamUrl(
  base: string,
  params: { subject?: string | string[]; [k: string]: string | string[] | undefined },
): string {
  const u = new URL('/v1/stream', base);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) u.searchParams.append(k, one);
  }
  return u.toString();
}

/**
 * A raw SSE stream: status, headers and JSON body of a refusal, or every frame and comment of the stream.
 * `pause()` stops reading the socket (TCP back-pressure reaches the gateway); `resume()` reads on.
 */
export class SseReader {
  readonly frames: SseFrame[] = [];
  readonly comments: string[] = [];
  ended = false;
  error: Error | undefined;
  /** JSON (or text) body of a non-200 answer. */
  body: unknown;
  private readonly parser: SseParser;
  private readonly decoder = new TextDecoder();

  private constructor(
    private readonly req: ClientRequest,
    readonly res: IncomingMessage,
    opts: SseOpenOptions,
  ) {
    const keep = opts.keepFrames ?? true;
    this.parser = new SseParser(
      (f) => {
        if (f.id !== undefined) this.lastSeenId = f.id;
        if (keep) this.frames.push(f);
        opts.onFrame?.(f);
      },
      (c) => this.comments.push(c),
    );
  }

  /** The last `id:` received (what a browser would send back as Last-Event-ID). */
  lastSeenId: string | undefined;

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  header(name: string): string | undefined {
    const v = this.res.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  static open(url: string, opts: SseOpenOptions = {}): Promise<SseReader> {
    const headers: Record<string, string> = { Accept: 'text/event-stream', ...opts.headers };
    if (opts.token !== undefined) headers.Authorization = `Bearer ${opts.token}`;
    if (opts.lastEventId !== undefined) headers['Last-Event-ID'] = opts.lastEventId;
    return new Promise((resolve, reject) => {
      // A connection of its own (agent: false), so pausing it back-pressures only this stream.
      const req = httpRequest(url, { method: 'GET', headers, agent: false });
      req.once('error', reject);
      req.once('response', (res) => {
        const reader = new SseReader(req, res, opts);
        req.off('error', reject);
        req.on('error', (err) => (reader.error = err));
        res.on('error', (err) => (reader.error = err));
        res.once('close', () => (reader.ended = true));
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.once('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              reader.body = JSON.parse(text);
            } catch {
              reader.body = text;
            }
            resolve(reader);
          });
          return;
        }
        res.on('data', (c: Buffer) => reader.parser.feed(reader.decoder.decode(c, { stream: true })));
        resolve(reader);
      });
      req.end();
    });
  }

  /** Frames of the default type (deliveries), parsed. */
  deliveries(): Delivery[] {
    const out: Delivery[] = [];
    for (const f of this.frames)
      if (f.event === undefined && f.data !== undefined) out.push(JSON.parse(f.data) as Delivery);
    return out;
  }

  /** Frames of one `event:` type. */
  named(event: string): SseFrame[] {
    return this.frames.filter((f) => f.event === event);
  }

  pause(): void {
    this.res.pause();
  }

  resume(): void {
    this.res.resume();
  }

  async waitForFrames(pred: (frames: SseFrame[]) => boolean, message: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(() => pred(this.frames), { timeoutMs, message });
  }

  async waitForDeliveries(n: number, timeoutMs = 15_000): Promise<Delivery[]> {
    await waitFor(() => this.deliveries().length >= n, {
      timeoutMs,
      message: `${n} SSE deliveries (have ${this.deliveries().length})`,
    });
    return this.deliveries();
  }

  async waitForEnd(timeoutMs = 15_000): Promise<void> {
    await waitFor(() => this.ended, { timeoutMs, message: 'SSE stream end' });
  }

  close(): void {
    this.req.destroy();
    this.res.destroy();
  }
}
