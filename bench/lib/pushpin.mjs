// Pushpin (the GRIP proxy from Debian's `pushpin` package) as a peer target: the bench never installs it;
// when `pushpin` is on PATH, a phase runs it from a generated config in a temp dir, in front of the GRIP
// origin bench/refs/ref-pushpin.mjs.
//
// `pushpin` is a runner that starts several processes: condure (client connections), zurl (the proxy's
// HTTP client towards the origin), pushpin-proxy and pushpin-handler (subscriptions and publishing). The
// target's CPU and RSS are summed over the runner, every process under it (read from /proc once it is
// ready) and the origin.
import { execFileSync } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startRef } from './gateway.mjs';
import { freePort, sleep, spawnTracked } from '../../test/lib/procs.mjs';

/** The `pushpin` executable on PATH, or undefined. */
export function pushpinBin() {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    try {
      accessSync(join(dir, 'pushpin'), constants.X_OK);
      return join(dir, 'pushpin');
    } catch {
      // next
    }
  }
  return undefined;
}

/** `pushpin --version`, or null when it is not installed. */
export function pushpinVersion() {
  const bin = pushpinBin();
  if (!bin) return null;
  try {
    return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown version';
  }
}

/** Every process below `pid` (children, their children, …), from /proc. */
export function descendants(pid) {
  const parentOf = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parentOf.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out = [];
  let frontier = [pid];
  while (frontier.length) {
    const next = [];
    for (const [child, parent] of parentOf) if (frontier.includes(parent)) next.push(child);
    out.push(...next);
    frontier = next;
  }
  return out;
}

/**
 * Everything in the temp dir: zmq ipc sockets, logs, pid files; loopback TCP only for the client port and
 * the HTTP publish port. The origin is reached through zurl, which the Debian package depends on but which
 * its default config expects as a system service: here the runner starts a private one.
 */
function config({ dir, httpPort, publishPort, messageRate }) {
  return `[global]
include={libdir}/internal.conf
rundir=${join(dir, 'run')}
ipc_prefix=bench-
port_offset=0
stats_connection_ttl=120

[runner]
services=condure,zurl,pushpin-proxy,pushpin-handler
http_port=127.0.0.1:${httpPort}
logdir=${join(dir, 'log')}
# warnings and errors only
log_level=1
client_buffer_size=8192
client_maxconn=50000
condure_bin=condure
zurl_bin=zurl

[proxy]
routesfile=routes
zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in
zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream
zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out
debug=false
auto_cross_origin=false
sig_iss=pushpin
sig_key=bench-only-not-a-secret
updates_check=off

[handler]
push_in_spec=ipc://{rundir}/{ipc_prefix}push-in
push_in_sub_specs=ipc://{rundir}/{ipc_prefix}push-in-sub
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=${publishPort}
push_in_http_max_body_size=16000000
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=ipc://{rundir}/{ipc_prefix}command
message_rate=${messageRate}
message_hwm=${messageRate * 10}
message_wait=5000
id_cache_ttl=60
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
`;
}

/**
 * Pushpin's handler paces deliveries to `message_rate` per second (queueing ten times that). The package's
 * 2,500 is a throttle, not a capacity: left in place it capped Pushpin at ~2,400 deliveries/s to 20 clients
 * here, so the bench raises it far above anything it offers (`--param fanout.pushpin.messageRate=2500` runs
 * the package's value).
 */
export const DEFAULT_MESSAGE_RATE = 1_000_000;

/**
 * Every process whose command line names `dir` (the runner and its services all do): the runner puts each
 * service in its own process group, and once the runner is gone they are no longer its children.
 */
function processesUsing(dir) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(dir)) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function signalAll(pids, signal) {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Whether a listener can take 127.0.0.1:`port` right now. */
function canListen(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A loopback port outside the kernel's ephemeral range (net.ipv4.ip_local_port_range) that nothing listens on.
 * Pushpin's two ports are chosen here, not with freePort(): a port the kernel hands out as free sits in the
 * ephemeral range, where, before Pushpin binds it, any server on the machine listening on port 0 (on 127.0.0.1
 * or every address) may be given it, or a connection from 127.0.0.1 may use it (once closed, its TIME_WAIT keeps
 * listeners off the port for a minute, SO_REUSEADDR or not). pushpin-handler then runs without its publish
 * endpoint and says nothing. Outside that range the kernel never hands a port out by itself.
 */
export async function quietPort(avoid = []) {
  let lo = 32_768;
  let hi = 60_999;
  try {
    [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    // not Linux: the usual range
  }
  // The 8,192 ports just below the range, or just above it when the range starts too low.
  const span = lo - 8_192 >= 1_024 ? [lo - 8_192, lo - 1] : hi + 8_192 <= 65_535 ? [hi + 1, hi + 8_192] : null;
  for (let i = 0; span && i < 200; i++) {
    const port = span[0] + Math.floor(Math.random() * (span[1] - span[0] + 1));
    if (!avoid.includes(port) && (await canListen(port))) return port;
  }
  return freePort(); // the whole port space is ephemeral, or everything tried is taken
}

/**
 * Starts the GRIP origin (same feed as the bare reference) and Pushpin in front of it. Resolves when a
 * request through Pushpin reaches the origin and the publish endpoint answers.
 * Returns {url (Pushpin's client port), publishUrl (the origin: where the embedded store's events go),
 * pid (the runner), pids (runner, its processes, origin), cpuParts, stop(), restarted (null, or why the
 * first start failed)}.
 *
 * A start that does not become ready is stopped entirely (runner, services, origin, temp dir) and made once
 * more from scratch on fresh ports; `restarted` then says what the first one saw, for the report's notes.
 */
export async function startPushpin(opts) {
  try {
    return { ...(await startOnce(opts)), restarted: null };
  } catch (err) {
    if (err.notInstalled) throw err;
    const why = String(err?.message ?? err).split('\n')[0];
    process.stderr.write(`   ${why}\n   pushpin: stopped it all; starting again on fresh ports\n`);
    return { ...(await startOnce(opts)), restarted: why };
  }
}

async function startOnce({ store, natsUrl, messageRate = DEFAULT_MESSAGE_RATE }) {
  const bin = pushpinBin();
  if (!bin) throw Object.assign(new Error('pushpin is not installed'), { notInstalled: true });
  const dir = mkdtempSync(join(tmpdir(), 'hookstream-bench-pushpin-'));
  mkdirSync(join(dir, 'run'));
  mkdirSync(join(dir, 'log'));
  const httpPort = await quietPort();
  const publishPort = await quietPort([httpPort]);
  const publishUrl = `http://127.0.0.1:${publishPort}/publish/`;
  let origin;
  let runner;
  const stopAll = async () => {
    if (runner) {
      // The runner stops its services on SIGTERM; any that outlive it are killed by name of the temp dir.
      const exited = runner.exitCode !== null || runner.signalCode !== null;
      if (!exited) {
        const gone = new Promise((resolve) => runner.once('exit', resolve));
        runner.kill('SIGTERM');
        const timer = setTimeout(() => runner.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(timer);
      }
      for (let i = 0; i < 50 && processesUsing(dir).length; i++) await sleep(100);
      signalAll(processesUsing(dir), 'SIGKILL');
      process.off('exit', onExit);
    }
    await origin?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  // The bench is exiting (an error, Ctrl-C): nothing of this Pushpin may outlive it.
  const onExit = () => {
    signalAll(processesUsing(dir), 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    origin = await startRef('ref-pushpin', { store, natsUrl, extraArgs: ['--publish', publishUrl] });
    writeFileSync(join(dir, 'pushpin.conf'), config({ dir, httpPort, publishPort, messageRate }));
    writeFileSync(join(dir, 'routes'), `* 127.0.0.1:${origin.port}\n`);
    runner = spawnTracked(bin, ['--config', join(dir, 'pushpin.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    process.on('exit', onExit);
    let output = '';
    const keep = (d) => (output = (output + d.toString()).slice(-16_384));
    runner.stdout.on('data', keep);
    runner.stderr.on('data', keep);
    const url = `http://127.0.0.1:${httpPort}`;
    const logs = () => {
      let text = output;
      for (const f of readdirSync(join(dir, 'log'))) text += `\n${f}: ${readFileSync(join(dir, 'log', f), 'utf8')}`;
      return text.slice(-16_384);
    };
    // For a start that fails: who holds Pushpin's two ports (a short line) and its output and logs.
    const diagnosis = () => ({
      ports: `client port ${httpPort}: ${portHolders(httpPort)}; publish port ${publishPort}: ${portHolders(publishPort)}; origin on ${origin.port}`,
      logs: logs(),
    });
    await waitOk(`${url}/healthz`, { method: 'GET' }, runner, diagnosis);
    await waitOk(publishUrl, { method: 'POST', body: '{"items":[]}' }, runner, diagnosis);
    const services = descendants(runner.pid);
    return {
      kind: 'pushpin',
      url,
      publishUrl: origin.url,
      port: httpPort,
      pid: runner.pid,
      pids: [runner.pid, ...services, origin.pid],
      cpuParts: { pushpin: [runner.pid, ...services], origin: [origin.pid] },
      services: services.map((pid) => ({ pid, name: commOf(pid) })),
      output: logs,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

const TCP_STATES = { '01': 'established', '06': 'time-wait', '08': 'close-wait', '0A': 'listening' };

/**
 * Who holds loopback TCP `port` right now, from /proc/net/tcp and the processes' open sockets: for the error of a
 * start that failed (pushpin-handler does not say when it cannot bind its publish port; it just never answers).
 */
export function portHolders(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const sockets = new Map();
  try {
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !f[1].endsWith(`:${hex}`)) continue;
      sockets.set(
        f[9],
        `${TCP_STATES[f[3]] ?? `state ${f[3]}`}${f[2] === '00000000:0000' ? '' : ` to port ${parseInt(f[2].split(':')[1], 16)}`}`,
      );
    }
  } catch {
    return 'unknown (no /proc/net/tcp)';
  }
  if (!sockets.size) return 'nothing';
  const owners = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let fds;
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${name}/fd/${fd}`));
        if (m && sockets.has(m[1])) owners.set(m[1], `${commOf(Number(name))} (pid ${name})`);
      } catch {
        // closed meanwhile
      }
    }
  }
  return [...sockets]
    .map(([inode, what]) => `${what}${owners.has(inode) ? ` by ${owners.get(inode)}` : ''}`)
    .join('; ');
}

function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Retries until `url` answers 2xx. Each attempt has its own timeout: a request Pushpin accepted while its
 * services were still connecting to each other can be dropped and never answered.
 */
async function waitOk(url, init, child, diagnosis, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  for (;;) {
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(1_000) });
      if (res.ok) return;
      last = `HTTP ${res.status}`;
      await res.body?.cancel();
    } catch (err) {
      // not listening yet, or the attempt timed out
      last = String(err?.cause?.code ?? err?.name ?? err);
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      const { ports, logs } = diagnosis();
      const how = child.exitCode !== null ? `the runner exited with ${child.exitCode}` : `last attempt: ${last}`;
      throw new Error(`pushpin: ${url} not ready (${how}; ${ports}):\n${logs}`);
    }
    await sleep(50);
  }
}
