import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HttpSender, parseRetryAfter } from './http-sender.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

describe('HttpSender', () => {
  let server: Server;
  let base: string;
  let handler: Handler = (_req, res) => res.end('ok');
  const seen: { headers: IncomingMessage['headers']; body: string; url: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), url: req.url ?? '' });
        handler(req, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const sender = (over: Partial<ConstructorParameters<typeof HttpSender>[0]> = {}) =>
    new HttpSender({ timeoutMs: 2_000, allowPrivateNetworks: true, ...over });

  it('POSTs the body with the given headers and reports a 2xx', async () => {
    handler = (_req, res) => res.writeHead(204).end();
    const s = sender();
    const r = await s.send(
      new URL(`${base}/in`),
      { 'content-type': 'application/json', 'x-a': 'b' },
      Buffer.from('{"a":1}'),
    );
    s.close();
    expect(r).toMatchObject({ status: 204, error: null });
    const last = seen.at(-1)!;
    expect(last).toMatchObject({ body: '{"a":1}', url: '/in' });
    expect(last.headers['x-a']).toBe('b');
    expect(last.headers['content-length']).toBe('7');
  });

  it('keeps only the first 1 KB of the answer', async () => {
    handler = (_req, res) => res.writeHead(500).end('x'.repeat(5000));
    const s = sender();
    const r = await s.send(new URL(base), {}, Buffer.from('{}'));
    s.close();
    expect(r.status).toBe(500);
    expect(r.response).toHaveLength(1024);
  });

  it('does not follow a redirect: a 3xx is the error `redirect`', async () => {
    let followed = 0;
    handler = (req, res) => {
      if (req.url === '/elsewhere') followed++;
      res.writeHead(302, { location: `${base}/elsewhere` }).end();
    };
    const s = sender();
    const r = await s.send(new URL(`${base}/start`), {}, Buffer.from('{}'));
    s.close();
    expect(r).toMatchObject({ status: 302, error: 'redirect' });
    expect(followed).toBe(0);
  });

  it('gives up on a hanging receiver after the timeout', async () => {
    handler = () => undefined; // never answers
    const s = sender({ timeoutMs: 300 });
    const r = await s.send(new URL(base), {}, Buffer.from('{}'));
    s.close();
    expect(r).toMatchObject({ status: null, error: 'timeout' });
  });

  it('reads Retry-After on 429 and 503', async () => {
    handler = (_req, res) => res.writeHead(429, { 'retry-after': '7' }).end();
    const s = sender();
    expect(await s.send(new URL(base), {}, Buffer.from('{}'))).toMatchObject({ status: 429, retryAfterMs: 7000 });
    s.close();
  });

  it('reports a refused connection as connection_failed', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const port = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
    const s = sender();
    expect(await s.send(new URL(`http://127.0.0.1:${port}/`), {}, Buffer.from('{}'))).toMatchObject({
      status: null,
      error: 'connection_failed',
    });
    s.close();
  });

  it('refuses a private literal address without connecting unless private networks are allowed', async () => {
    const before = seen.length;
    const s = sender({ allowPrivateNetworks: false });
    expect(await s.send(new URL(base), {}, Buffer.from('{}'))).toMatchObject({ error: 'blocked_address' });
    s.close();
    expect(seen.length).toBe(before);
  });

  it('checks the address actually dialled: a name that resolves to loopback fails with blocked_address', async () => {
    handler = (_req, res) => res.end('ok');
    const before = seen.length;
    const port = new URL(base).port;
    const s = sender({ allowPrivateNetworks: false, resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
    expect(await s.send(new URL(`http://rebind.test:${port}/`), {}, Buffer.from('{}'))).toMatchObject({
      status: null,
      error: 'blocked_address',
    });
    s.close();
    expect(seen.length).toBe(before);
    // The same name through the same resolver connects when private networks are allowed.
    const open = sender({ allowPrivateNetworks: true, resolver: async () => [{ address: '127.0.0.1', family: 4 }] });
    expect(await open.send(new URL(`http://rebind.test:${port}/`), {}, Buffer.from('{}'))).toMatchObject({
      status: 200,
    });
    open.close();
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120', 0)).toBe(120_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('soon', 0)).toBeNull();
    expect(parseRetryAfter(undefined, 0)).toBeNull();
  });
});
