import { PassThrough } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { createLogger } from './logger.js';

function capture(pretty: boolean): { lines: () => string[]; log: ReturnType<typeof createLogger> } {
  const sink = new PassThrough();
  let text = '';
  sink.on('data', (b: Buffer) => (text += b.toString()));
  const log = createLogger('info', { pretty, destination: sink });
  return { log, lines: () => text.split('\n').filter(Boolean) };
}

describe('createLogger', () => {
  it('writes one JSON object per line for machines', () => {
    const { log, lines } = capture(false);
    log.info({ port: 3000 }, 'hookstream listening');
    const [line] = lines();
    expect(JSON.parse(line)).toMatchObject({
      level: 30,
      service: 'hookstream',
      port: 3000,
      msg: 'hookstream listening',
    });
  });

  it('writes readable lines for a terminal: level name, message and fields, no JSON', () => {
    const { log, lines } = capture(true);
    log.warn({ dataDir: '/tmp/x' }, 'NATS_URL is not set');
    const text = lines().join('\n');
    expect(text).toMatch(/WARN.*NATS_URL is not set/);
    expect(text).toContain('dataDir: "/tmp/x"');
    expect(() => JSON.parse(lines()[0])).toThrow();
  });
});
