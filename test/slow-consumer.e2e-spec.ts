/**
 * Issue "Hardening", finding 7 (memory): a client that stops reading must not grow the gateway's memory, on either
 * transport, and must be told why it is closed (`closing {reason: "slow_consumer"}`), while clients that read
 * get every event once, in order. 4 KB events flow at 500/s past SSE and Socket.IO clients whose TCP sockets
 * stop reading (real sockets, paused: the kernel buffers fill, then the gateway's would). One of each reads again
 * once closed and must find the reason at the end of its stream; one of each never reads again and must be cut.
 *
 * The event bound is set far above what flows (clientBufferEvents 100,000), so only the byte budget and the
 * slow-consumer close can keep memory bounded. The gateway runs in this process so its heap can be measured
 * after a forced GC; the test's own clients keep only sequence numbers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Socket } from 'socket.io-client';
import { waitFor } from './harness/wait.js';
import {
  LoadGenerator,
  SseReader,
  connectSocket,
  forceGc,
  mustSubscribe,
  streamUrl,
  subscriberAuth,
  subscriberToken,
  type ClosingMessage,
  type Delivery,
  type SseFrame,
} from './support/clients.js';
import { testConfig } from './support/config.js';
import { startGateway, type RunningGateway } from './support/gateway.js';

jest.setTimeout(120_000);

const MB = 2 ** 20;
const RATE = 500;
const EVENTS = 6000;
const PAD = 'x'.repeat(4096);
const SUBJECT = 'events.flow.>';

const dirs: string[] = [];
let gw: RunningGateway;
const sockets: Socket[] = [];
const readers: SseReader[] = [];

/** A metric's value, summed over its labels. */
async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const lines = text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return lines.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Heap and off-heap (Buffer) bytes in use after a forced GC (as is when GC cannot be forced). */
function memoryInUse(): number {
  const gc = forceGc();
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

/** The TCP socket under a socket.io-client WebSocket connection (Node's `ws` keeps it as `_socket`). */
function tcpOf(socket: Socket): { pause(): void; resume(): void } {
  const transport = socket.io.engine.transport as unknown as { ws?: { _socket?: { pause(): void; resume(): void } } };
  const tcp = transport.ws?._socket;
  if (!tcp) throw new Error('socket.io-client is not on a Node WebSocket');
  return tcp;
}

beforeAll(async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hookstream-slow-'));
  dirs.push(dataDir);
  gw = await startGateway(
    testConfig({
      dataDir,
      file: {
        auth: subscriberAuth(),
        limits: {
          ringEvents: 200,
          clientBufferEvents: 100_000,
          clientBufferBytes: '256KB',
          slowConsumerTimeout: '1s',
        },
      },
    }),
  );
});

afterAll(async () => {
  for (const s of sockets) s.close();
  for (const r of readers) r.close();
  await gw?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('a client that stops reading', () => {
  it('is closed with slow_consumer on SSE and Socket.IO, memory stays bounded, and readers are unaffected', async () => {
    const token = await subscriberToken(['events.>']);

    // Two clients that read everything, reduced to seqs as they arrive.
    const sseSeqs: number[] = [];
    const healthySse = await SseReader.open(streamUrl(gw.url, { subject: SUBJECT }), {
      token,
      keepFrames: false,
      onFrame: (f: SseFrame) => {
        if (f.event === undefined && f.data !== undefined) sseSeqs.push((JSON.parse(f.data) as Delivery).seq);
      },
    });
    readers.push(healthySse);
    const ioSeqs: number[] = [];
    const healthyIo = await connectSocket(gw.url, token);
    sockets.push(healthyIo);
    healthyIo.on('event', (m: Delivery) => ioSeqs.push(m.seq));
    await mustSubscribe(healthyIo, { subjects: [SUBJECT] });

    // Two that stop reading at once.
    const slowFrames: SseFrame[] = [];
    const slowSse = await SseReader.open(streamUrl(gw.url, { subject: SUBJECT }), {
      token,
      keepFrames: false,
      onFrame: (f) => {
        if (f.event !== undefined) slowFrames.push(f);
      },
    });
    readers.push(slowSse);
    await waitFor(() => slowSse.lastSeenId !== undefined, { message: 'ready on the slow SSE stream' });
    slowSse.res.socket?.pause();
    slowSse.pause();
    const slowIo = await connectSocket(gw.url, token);
    sockets.push(slowIo);
    const ioClosings: ClosingMessage[] = [];
    slowIo.on('closing', (m: ClosingMessage) => ioClosings.push(m));
    let slowIoDisconnected = false;
    slowIo.on('disconnect', () => (slowIoDisconnected = true));
    await mustSubscribe(slowIo, { subjects: [SUBJECT] });
    tcpOf(slowIo).pause();

    // And two that never read again.
    const deadSse = await SseReader.open(streamUrl(gw.url, { subject: SUBJECT }), { token, keepFrames: false });
    readers.push(deadSse);
    await waitFor(() => deadSse.lastSeenId !== undefined, { message: 'ready on the dead SSE stream' });
    deadSse.res.socket?.pause();
    deadSse.pause();
    const deadIo = await connectSocket(gw.url, token);
    sockets.push(deadIo);
    await mustSubscribe(deadIo, { subjects: [SUBJECT] });
    tcpOf(deadIo).pause();
    expect(await metric('hookstream_connected_clients')).toBe(6);

    const baseline = memoryInUse();
    let peak = baseline;
    const load = new LoadGenerator({
      urls: [gw.url],
      ratePerSecond: RATE,
      maxBatch: 50,
      item: (i) => ({ subject: 'events.flow.tick', data: { i, pad: PAD } }),
    });
    // As soon as the gateway has closed both, the stalled clients read again (before it cuts them).
    const closedThenRead = waitFor(async () => (await metric('hookstream_slow_consumer_closes_total')) >= 4, {
      timeoutMs: 40_000,
      message: 'every slow consumer closed',
    }).then(() => {
      slowSse.res.socket?.resume();
      slowSse.resume();
      tcpOf(slowIo).resume();
    });
    closedThenRead.catch(() => undefined); // awaited below; a timeout must not surface as unhandled meanwhile
    for (let step = 1000; step <= EVENTS; step += 1000) {
      await waitFor(() => load.accepted >= step, { timeoutMs: 30_000, message: `${step} events published` });
      peak = Math.max(peak, memoryInUse());
    }
    const published = (await load.stop()).map((r) => r.seq);
    expect(load.failures).toBe(0);
    peak = Math.max(peak, memoryInUse());
    const growthMb = (peak - baseline) / MB;
    process.stderr.write(
      `slow consumers: ${published.length} × 4 KB events at ${RATE}/s; heap+external growth ${growthMb.toFixed(1)} MB ` +
        `(gc ${forceGc() ? 'forced' : 'not available'}), rss ${(process.memoryUsage().rss / MB).toFixed(0)} MB, ` +
        `slow-consumer closes ${await metric('hookstream_slow_consumer_closes_total')}\n`,
    );
    // ~24 MB flowed past each stalled client: kept for all four, that is ~96 MB; the budget is 256 KB per client.
    expect(growthMb).toBeLessThan(16);

    // What the stalled clients were sent ends with the reason, on both transports.
    await closedThenRead;
    await slowSse.waitForEnd(30_000);
    expect(slowFrames.at(-1)).toMatchObject({ event: 'closing', data: JSON.stringify({ reason: 'slow_consumer' }) });
    await waitFor(() => slowIoDisconnected, { timeoutMs: 30_000, message: 'the slow Socket.IO client disconnected' });
    expect(ioClosings).toEqual([expect.objectContaining({ reason: 'slow_consumer' })]);
    // The two that never read were cut, so what the gateway held for them is freed: only the readers remain.
    await waitFor(async () => (await metric('hookstream_connected_clients')) === 2, {
      timeoutMs: 30_000,
      message: 'the clients that never read to be disconnected',
    });

    // Readers got every event once, in order.
    const last = published[published.length - 1];
    await waitFor(() => sseSeqs.at(-1) === last && ioSeqs.at(-1) === last, {
      timeoutMs: 30_000,
      message: 'the reading clients to receive the last event',
    });
    expect(sseSeqs).toEqual(published);
    expect(ioSeqs).toEqual(published);
  });
});
