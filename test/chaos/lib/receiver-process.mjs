/**
 * The chaos run's outbound receivers in a child process of their own (lib/receivers.mjs), so that their answers
 * do not queue behind the run's 25 subscribers and its provider on one event loop: on a busy machine that made a
 * prompt receiver look like a hanging one. The parent (lib/outbound.mjs) drives it over the IPC channel:
 * `{id, cmd, ...}` in, `{id, result}` or `{id, error}` out.
 */
import { prng } from './report.mjs';
import { ChaosReceiver, flapping, pidOfPort, unreliable } from './receivers.mjs';

const receivers = new Map();
/** pid → `<gateway name>/<pid>` of every gateway process seen, killed ones included. */
const gatewayOf = new Map();
let want = {};

const commands = {
  /** Starts one receiver per name; `{name: url}`. */
  async start({ names, seed }) {
    const random = prng(seed);
    const behaviours = {
      flapping: () => flapping(random),
      fifo: () => unreliable(random, 0.05),
    };
    for (const name of names) {
      const rx = await ChaosReceiver.start(name, (behaviours[name] ?? (() => () => ({ status: 200 })))());
      rx.senderOf = pidOfPort;
      receivers.set(name, rx);
    }
    return Object.fromEntries([...receivers].map(([name, rx]) => [name, rx.url]));
  },
  secret({ name, secret }) {
    receivers.get(name).secret = secret;
  },
  /** The gateway processes now: `{<name>/<pid>: pid}`. */
  pids({ pids }) {
    for (const [name, pid] of Object.entries(pids)) if (pid) gatewayOf.set(pid, name);
  },
  down: ({ name }) => receivers.get(name).down(),
  up: ({ name }) => receivers.get(name).up(),
  /** webhook-ids answered 2xx so far, per receiver. */
  counts: () => Object.fromEntries([...receivers].map(([name, rx]) => [name, rx.okIds.size])),
  /** `ids` (per receiver) become the ones `missing` counts. */
  want(args) {
    want = args.ids;
  },
  missing: () =>
    [...receivers].reduce((n, [name, rx]) => n + (want[name] ?? []).filter((id) => !rx.okIds.has(id)).length, 0),
  /** Everything recorded: `{name: {requests, downs}}`; each request's `from` names the gateway that sent it. */
  dump: () =>
    Object.fromEntries(
      [...receivers].map(([name, rx]) => [
        name,
        { requests: rx.dump().map(({ pid, ...r }) => ({ ...r, from: gatewayOf.get(pid) })), downs: rx.downs },
      ]),
    ),
  async close() {
    await Promise.all([...receivers.values()].map((rx) => rx.close()));
    setImmediate(() => process.exit(0));
  },
};

process.on('message', async ({ id, cmd, ...args }) => {
  try {
    process.send({ id, result: await commands[cmd](args) });
  } catch (err) {
    process.send({ id, error: String(err?.stack ?? err) });
  }
});
// The parent gone, nothing is left to answer for.
process.on('disconnect', () => process.exit(0));
