import { describe, expect, it } from '@jest/globals';
import type { Socket } from 'socket.io';
import { checkPrebuiltFrames, installedInternals, prebuiltFrameSupport, sendsPreEncoded } from './prebuilt-frames.js';

/** A server-side socket whose connection looks like engine.io's WebSocket transport today. */
function websocketConnection(): Socket {
  return {
    conn: {
      transport: { name: 'websocket', perMessageDeflate: null, socket: { _sender: { sendFrame: () => undefined } } },
    },
  } as unknown as Socket;
}

describe('pre-built WebSocket frames', () => {
  it('are supported by the installed engine.io and ws (this fails when an upgrade forces the slow fallback)', () => {
    expect(checkPrebuiltFrames()).toEqual({ ok: true, problems: [] });
    expect(prebuiltFrameSupport().ok).toBe(true);
    expect(sendsPreEncoded(websocketConnection())).toBe(true);
  });

  it('are refused, naming the reason, when ws no longer frames as expected', () => {
    const real = installedInternals();
    expect(checkPrebuiltFrames({ ...real, Sender: {} }).problems).toEqual(['ws no longer exports Sender.frame']);
    const wrong = { frame: () => [Buffer.from([0x82, 0x02, 0x34, 0x78])] };
    expect(checkPrebuiltFrames({ ...real, Sender: wrong }).problems).toEqual([
      'ws Sender.frame built 82023478 for a 2-byte text frame, not 81023478',
    ]);
  });

  it("are refused when engine.io's transport would encode the packet again instead of writing the frame", () => {
    const real = installedInternals();
    class Reencoding {
      constructor(private readonly req: { websocket: { send(data: string): void } }) {}
      send(packets: { data: string }[]) {
        for (const p of packets) this.req.websocket.send(p.data);
      }
    }
    const verdict = checkPrebuiltFrames({ ...real, WebSocketTransport: Reencoding });
    expect(verdict.ok).toBe(false);
    expect(verdict.problems).toEqual([
      "engine.io's WebSocket transport no longer writes wsPreEncodedFrame through _sender.sendFrame",
    ]);
    expect(checkPrebuiltFrames({ ...real, WebSocketTransport: undefined }).problems).toEqual([
      'engine.io no longer exports its WebSocket transport',
    ]);
  });

  it("are refused when engine.io's connection no longer queues packets in writeBuffer", () => {
    class Renamed {
      queue: unknown[] = [];
    }
    expect(checkPrebuiltFrames({ ...installedInternals(), EngineSocket: Renamed }).problems).toEqual([
      "engine.io's Socket no longer keeps its queued packets in writeBuffer",
    ]);
  });

  it('fall back to plain messages on every connection once the boot check failed', () => {
    expect(sendsPreEncoded(websocketConnection(), { ok: false, problems: ['changed'] })).toBe(false);
  });
});
