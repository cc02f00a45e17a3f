// A private nats-server for one bench phase: JetStream on, 127.0.0.1, a free port, a temp store that is
// removed afterwards. Never the shared server on 4222.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTracked, stopChild } from './procs.mjs';
import { freePort, natsServerBin, sleep } from './util.mjs';

function canConnect(port) {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startNats() {
  const bin = natsServerBin();
  if (!bin) throw new Error('nats-server not found (apt-get install nats-server, or set NATS_SERVER_BIN)');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'hookstream-bench-nats-'));
  // NATS's default max_payload (1MB) cannot hold the events of the default ingest.maxBodyBytes: the gateway
  // would stay unready. max_payload has no command-line flag.
  const conf = join(dir, 'nats-server.conf');
  writeFileSync(conf, 'max_payload: 8388608\n');
  const child = spawnTracked(bin, ['-c', conf, '-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const onData = (d) => (log = (log + d.toString()).slice(-16_384));
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const deadline = Date.now() + 20_000;
  while (!(log.includes('Server is ready') && (await canConnect(port)))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`nats-server ${child.exitCode !== null ? 'exited early' : 'not ready in time'}:\n${log}`);
    }
    await sleep(20);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid,
    async stop() {
      await stopChild(child, 'SIGTERM', 5_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
