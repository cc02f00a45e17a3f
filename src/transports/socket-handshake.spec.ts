import { createServer, type Server as HttpServer } from 'node:http';
import { connect, type AddressInfo, type Socket as NetSocket } from 'node:net';
import { Server } from 'socket.io';
import { WebSocket, WebSocketServer } from 'ws';
import { HandshakeCorkingServer, sessionId } from './socket-handshake.js';

interface Gateway {
  http: HttpServer;
  io: Server;
  port: number;
  /** Write operations (each one syscall) on the server's side of every upgraded connection, in order. */
  writes: number[];
}

async function gateway(wsEngine: unknown, withSessionIds = false): Promise<Gateway> {
  const http = createServer();
  const writes: number[] = [];
  // Runs before engine.io's own upgrade listener: count what reaches the TCP handle.
  http.prependListener('upgrade', (_req, socket: NetSocket) => {
    const i = writes.push(0) - 1;
    const s = socket as NetSocket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
    const write = s._write.bind(s);
    const writev = s._writev.bind(s);
    s._write = (...a: unknown[]) => {
      writes[i]++;
      write(...a);
    };
    s._writev = (...a: unknown[]) => {
      writes[i]++;
      writev(...a);
    };
  });
  const io = new Server(http, { transports: ['websocket'], wsEngine, serveClient: false });
  if (withSessionIds) io.engine.generateId = sessionId;
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return { http, io, port: (http.address() as AddressInfo).port, writes };
}

async function stop(g: Gateway): Promise<void> {
  await g.io.close();
  if (g.http.listening) await new Promise((r) => g.http.close(r));
}

/** Opens a raw engine.io WebSocket and resolves with its first message (the `open` packet). */
function firstMessage(port: number): Promise<{ ws: WebSocket; text: string }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve({ ws, text: data.toString() }));
    ws.once('error', reject);
  });
}

describe('HandshakeCorkingServer', () => {
  it("writes the 101 answer and engine.io's open packet in one write", async () => {
    const g = await gateway(HandshakeCorkingServer);
    try {
      const { ws, text } = await firstMessage(g.port);
      expect(text.startsWith('0{')).toBe(true);
      expect(g.writes).toEqual([1]);
      ws.close();
    } finally {
      await stop(g);
    }
  });

  it('(the stock ws server takes two writes for the same)', async () => {
    const g = await gateway(WebSocketServer);
    try {
      const { ws } = await firstMessage(g.port);
      expect(g.writes).toEqual([2]);
      ws.close();
    } finally {
      await stop(g);
    }
  });

  it('still answers a refused upgrade with its HTTP error', async () => {
    const g = await gateway(HandshakeCorkingServer);
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = connect(g.port, '127.0.0.1');
        let got = '';
        sock.setEncoding('utf8');
        sock.on('data', (d: string) => (got += d));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
        sock.write(
          'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n' +
            'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not-a-key\r\n\r\n',
        );
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    } finally {
      await stop(g);
    }
  });

  it('gives each session a random UUID as its id', async () => {
    const g = await gateway(HandshakeCorkingServer, true);
    try {
      const a = await firstMessage(g.port);
      const b = await firstMessage(g.port);
      const sids = [a, b].map((m) => (JSON.parse(m.text.slice(1)) as { sid: string }).sid);
      for (const sid of sids) expect(sid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(sids[0]).not.toBe(sids[1]);
      a.ws.close();
      b.ws.close();
    } finally {
      await stop(g);
    }
  });
});
