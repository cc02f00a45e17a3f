import { describe, expect, it } from '@jest/globals';
import type { Socket } from 'socket.io';
import type { Delivery } from '../fanout/fanout.types.js';
import { SocketOutbox } from './socket-outbox.js';

const delivery = (seq: number): Delivery => ({
  cursor: `e1_${seq}`,
  seq,
  subject: 'events.a',
  event: {},
  json: `{"id":"m${seq}"}`,
});

/** A server-side socket over engine.io's WebSocket transport, recording what is written to the connection. */
function stubSocket() {
  const written: unknown[] = [];
  const ws = { readyState: 1, _sender: { sendFrame: () => undefined } };
  const socket = {
    connected: true,
    conn: {
      transport: { name: 'websocket', perMessageDeflate: null, socket: ws },
      writeBuffer: [] as unknown[],
      write(packet: unknown, _options: object, done: () => void) {
        written.push(packet);
        setImmediate(done);
      },
      once: () => undefined,
    },
  };
  return { socket, ws, written, outbox: new SocketOutbox(socket as unknown as Socket) };
}

function sendTwo(outbox: SocketOutbox, from: number): void {
  const sink = outbox.sink('s1');
  sink.cork?.();
  sink.send(delivery(from));
  sink.send(delivery(from + 1));
  sink.uncork?.();
}

describe('SocketOutbox', () => {
  it('writes a corked batch to an open connection as one write', () => {
    const { outbox, written } = stubSocket();
    sendTwo(outbox, 1);
    expect(written).toHaveLength(1);
  });

  it('writes nothing once the WebSocket is closing or socket.io disconnected it, and does not hold up drain waits', async () => {
    const { socket, ws, outbox, written } = stubSocket();
    ws.readyState = 2; // CLOSING: the close handshake ran, the TCP socket was ended
    sendTwo(outbox, 1);
    expect(written).toHaveLength(0);
    await new Promise<void>((resolve) => outbox.onceDrained(resolve));
    ws.readyState = 1;
    socket.connected = false;
    sendTwo(outbox, 3);
    expect(written).toHaveLength(0);
    expect(outbox.backlog()).toBe(0);
  });
});
