/**
 * HTTP over a raw TCP socket, for requests no well-behaved client would send: paths that fetch would normalise,
 * thousands of headers, repeated headers in a given order, bodies trickled byte by byte or larger than the
 * server is willing to read. The answer is parsed by hand, so refusals of Node's own parser are visible too.
 */
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON when the body is JSON, else the text. */
  body: any;
  text: string;
  /** Request bytes the client managed to hand to the socket before the answer (or the close). */
  bytesWritten: number;
}

export interface RawRequestOptions {
  method?: string;
  path: string;
  /** In order; a repeated name is sent as several header lines. */
  headers?: [string, string][];
  /** Sent after the headers as is (add content-length or transfer-encoding yourself). */
  body?: Buffer | string;
  /**
   * Generates the body chunk by chunk with back-pressure, until the answer arrives or `null` is returned:
   * the client never holds more than the socket accepts, so an endless body costs the test nothing.
   */
  bodyStream?: (i: number) => Buffer | null;
  /** Writes the body one byte per tick of this interval (a slow client). */
  trickleMs?: number;
  timeoutMs?: number;
}

/** Parses one HTTP/1.1 response out of `buf`; null while incomplete. Handles content-length and chunked. */
function parseResponse(buf: Buffer, closed: boolean): Omit<RawResponse, 'bytesWritten'> | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0])?.[1] ?? NaN);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let raw = buf.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (raw.length < n) return closed ? finish(status, headers, raw) : null;
    raw = raw.subarray(0, n);
  } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const out: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = raw.indexOf('\r\n', at);
      if (eol < 0) return closed ? finish(status, headers, Buffer.concat(out)) : null;
      const size = parseInt(raw.subarray(at, eol).toString('latin1'), 16);
      if (size === 0) break;
      if (raw.length < eol + 2 + size + 2) return closed ? finish(status, headers, Buffer.concat(out)) : null;
      out.push(raw.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    raw = Buffer.concat(out);
  } else if (!closed && !(status === 204 || status === 304)) {
    return null; // body runs until the connection closes
  }
  return finish(status, headers, raw);
}

function finish(status: number, headers: Record<string, string>, raw: Buffer): Omit<RawResponse, 'bytesWritten'> {
  const text = raw.toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status, headers, body, text };
}

/** Builds the request head: `METHOD path HTTP/1.1`, Host, the given headers in order, then a blank line. */
export function requestHead(port: number, method: string, path: string, headers: [string, string][]): string {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Sends one request on a fresh connection and resolves with the first response (or rejects on timeout). */
export function rawRequest(port: number, opts: RawRequestOptions): Promise<RawResponse> {
  const head = requestHead(port, opts.method ?? 'POST', opts.path, opts.headers ?? []);
  return rawExchange(port, head, opts);
}

/** Like rawRequest, with the request head written verbatim (for heads a builder would not produce). */
export function rawExchange(
  port: number,
  head: string | Buffer,
  opts: Omit<RawRequestOptions, 'path' | 'headers' | 'method'> = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let bytesWritten = 0;
    let done = false;
    let trickle: NodeJS.Timeout | undefined;
    const timer = setTimeout(
      () => settle(new Error(`no answer within ${opts.timeoutMs ?? 15_000} ms`)),
      opts.timeoutMs ?? 15_000,
    );
    const settle = (err: Error | null, res?: Omit<RawResponse, 'bytesWritten'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(trickle);
      socket.destroy();
      if (err) reject(err);
      else resolve({ ...(res as Omit<RawResponse, 'bytesWritten'>), bytesWritten });
    };
    const tryParse = (closed: boolean) => {
      const res = parseResponse(Buffer.concat(chunks), closed);
      if (res) settle(null, res);
      else if (closed)
        settle(
          new Error(
            `connection closed without a complete answer: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 200))}`,
          ),
        );
    };
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      tryParse(false);
    });
    socket.on('close', () => tryParse(true));
    // A server that answers early and closes makes further writes fail: that is expected, the answer counts.
    socket.on('error', () => undefined);
    const write = (data: Buffer | string): boolean => {
      if (done || socket.destroyed) return false;
      bytesWritten += Buffer.byteLength(data);
      return socket.write(data);
    };
    socket.once('connect', () => {
      write(head);
      if (opts.body !== undefined && opts.trickleMs !== undefined) {
        const body = Buffer.from(opts.body);
        let i = 0;
        trickle = setInterval(() => {
          if (i < body.length) write(body.subarray(i, ++i));
          else clearInterval(trickle);
        }, opts.trickleMs);
      } else if (opts.body !== undefined) {
        write(opts.body);
      } else if (opts.bodyStream) {
        const gen = opts.bodyStream;
        let i = 0;
        const pump = () => {
          for (;;) {
            if (done) return;
            const chunk = gen(i++);
            if (chunk === null) return;
            if (!write(chunk)) {
              socket.once('drain', pump);
              return;
            }
          }
        };
        pump();
      }
    });
  });
}
