import { describe, expect, it, jest } from '@jest/globals';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Delivery } from '../fanout/fanout.types.js';
import { sseChunk } from './sse-chunk.js';
import { SseOutbox } from './sse-outbox.js';

/** Serves one response with `serve`, reads it with Node's HTTP client; resolves with the body as received. */
async function roundTrip(
  serve: (res: ServerResponse) => void | Promise<void>,
): Promise<{ body: string; chunked: boolean }> {
  const server = createServer((_req, res) => void serve(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/' }, (res: IncomingMessage) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ body, chunked: res.headers['transfer-encoding'] === 'chunked' }));
        res.on('error', reject);
      }).on('error', reject);
    });
  } finally {
    server.close();
  }
}

const written = (res: ServerResponse, text: string) => new Promise<void>((resolve) => res.write(text, () => resolve()));
const turn = () => new Promise((resolve) => setImmediate(resolve));

const delivery = (seq: number, text = `n${seq}`): Delivery => ({
  cursor: `e_${seq}`,
  seq,
  subject: 'events.a',
  event: { text },
  json: JSON.stringify({ text }),
});

describe('sseChunk', () => {
  it("is read by Node's HTTP client as the frames, between chunks res.write sent, UTF-8 included", async () => {
    const frames = ['data: é ✓ 😀\n\n', 'id: x\ndata: {"a":1}\n\n'];
    const { body, chunked } = await roundTrip(async (res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      await written(res, 'retry: 2000\n\n');
      res.socket?.write(sseChunk(frames));
      res.socket?.write(sseChunk(['data: one\n\n']));
      res.write('data: last\n\n');
      res.end();
    });
    expect(chunked).toBe(true);
    expect(body).toBe(`retry: 2000\n\n${frames.join('')}data: one\n\ndata: last\n\n`);
  });

  it('is the same buffer for the same frames, a new one for others', () => {
    const a = 'data: a\n\n';
    const first = sseChunk([a]);
    expect(sseChunk([a])).toBe(first);
    expect(first.toString()).toBe(`9\r\n${a}\r\n`);
    const other = sseChunk([a, a]);
    expect(other).not.toBe(first);
    expect(other.toString()).toBe(`12\r\n${a}${a}\r\n`);
    expect(sseChunk(['data: b\n\n'])).not.toBe(first);
  });

  it('refuses to build an empty chunk (it would end the response)', () => {
    expect(() => sseChunk([''])).toThrow(RangeError);
  });
});

describe('SseOutbox on a real response', () => {
  it('sends every frame once, in order, whether written through the response or straight to the socket', async () => {
    const outboxes: SseOutbox[] = [];
    const { body } = await roundTrip(async (res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const out = new SseOutbox(res);
      outboxes.push(out);
      const viaResponse = jest.spyOn(res, 'write');
      out.write('retry: 2000\n\n');
      out.send(delivery(1));
      await turn(); // first write: through the response (headers go with it)
      await new Promise<void>((resolve) => out.onceDrained(resolve));
      out.send(delivery(2, 'é'));
      await turn(); // straight to the socket
      out.send(delivery(3));
      out.send(delivery(4));
      await turn();
      out.write('event: closing\ndata: {}\n\n');
      out.flush();
      // Only the first batch went through res.write; the three after it went to the socket as chunks.
      expect(viaResponse).toHaveBeenCalledTimes(1);
      res.end();
    });
    expect(body.match(/^(id|event|retry): .*$/gm)).toEqual([
      'retry: 2000',
      'id: e_1',
      'id: e_2',
      'id: e_3',
      'id: e_4',
      'event: closing',
    ]);
    expect(body).toContain('"event":{"text":"é"}');
    expect(outboxes[0].backlog()).toBe(0);
  });
});
