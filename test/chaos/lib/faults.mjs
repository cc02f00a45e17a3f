/**
 * The chaos run's fault injector: kill -9 a NATS node and restart it, kill -9 a gateway and restart it,
 * SIGSTOP a gateway for longer than the clients' dead-peer detection, restart the stream leader. Each fault
 * is recorded (when it was injected, what exactly, which process) for the recovery figures and the outbound
 * judge. It also owns the "is the cluster whole again" wait the run uses before a fault and at both ends.
 */
import { sleep, waitUntil } from '../../lib/procs.mjs';
import { log } from './report.mjs';

export class FaultInjector {
  /**
   * @param {{cluster: () => object, inspector: () => object, gateways: object[], subscribers: () => object[],
   *          random: () => number, short: boolean, pauseMs: number, fail: (what: string) => void}} opts
   */
  constructor(opts) {
    this.opts = opts;
    /** Every fault injected: {kind, detail, at, atRun, doneAt, process?, url?}. */
    this.faults = [];
    this.count = 0;
  }

  /** The gateway serving the most live clients (clients move away from a faulty one; hit where they are). */
  busiestGateway(n) {
    const { gateways, subscribers } = this.opts;
    const count = (gw) => subscribers().filter((s) => s.live && s.sessions.at(-1)?.url === gw.url).length;
    const counts = gateways.map(count);
    const most = Math.max(...counts);
    const busiest = gateways.filter((_, i) => counts[i] === most);
    return busiest[n % busiest.length];
  }

  async waitClusterHealthy(what) {
    const cluster = this.opts.cluster();
    const inspector = this.opts.inspector();
    const ok = await waitUntil(
      async () => {
        const nodes = await Promise.all(cluster.nodes.map((n) => n.healthy()));
        return nodes.every(Boolean) && (await inspector.replicasCurrent(3));
      },
      90_000,
      250,
    );
    if (!ok)
      this.opts.fail(
        `${what}: the stream's replicas were not all current within 90 s (a replica that never recovers?)`,
      );
    return ok;
  }

  async run(kind, t0) {
    const { random, short, pauseMs } = this.opts;
    const cluster = this.opts.cluster();
    const inspector = this.opts.inspector();
    const n = this.count++;
    const rec = { kind, detail: '' };
    this.faults.push(rec);
    // The fault's time is when it is injected (after any wait for the cluster to be whole again).
    const inject = (detail) => {
      rec.detail = detail;
      rec.at = Date.now();
      rec.atRun = rec.at - t0;
      log(`fault ${n}: ${detail}`);
    };
    switch (kind) {
      case 'nats-kill': {
        await this.waitClusterHealthy('before a NATS node kill');
        const leader = await inspector.leader();
        // A follower, preferably one holding consumers (the gateways' live taps are R1 consumers on one node):
        // its death must not stall the live feed of a gateway connected elsewhere.
        const hosts = await inspector.consumerHosts().catch(() => ({}));
        const others = cluster.nodes.filter((x) => x.name !== leader);
        const most = Math.max(...others.map((x) => hosts[x.name] ?? 0));
        const candidates = others.filter((x) => (hosts[x.name] ?? 0) === most);
        const node = candidates[Math.floor(random() * candidates.length)];
        inject(`kill -9 ${node.name} (leader ${leader}, holding ${most} consumers), restart after 5 s`);
        await node.kill('SIGKILL');
        await sleep(5_000);
        await node.restart();
        break;
      }
      case 'leader-restart': {
        await this.waitClusterHealthy('before a leader restart');
        const leader = await inspector.leader();
        const node = cluster.node(leader);
        // Full runs alternate a crash and a graceful stop of the leader.
        const signal = short || Math.floor(n / 4) % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
        inject(`${signal} the stream leader ${leader}, restart after 3 s`);
        await node.kill(signal);
        await sleep(3_000);
        await node.restart();
        const newLeader = await waitUntil(async () => !!(await inspector.leader()), 30_000, 100);
        rec.detail += newLeader ? `; new leader ${await inspector.leader()}` : '; no leader within 30 s';
        break;
      }
      case 'gateway-kill': {
        const gw = this.busiestGateway(n);
        rec.process = `${gw.name}/${gw.pid}`;
        inject(`kill -9 gateway ${gw.name} (the busiest), restart at once`);
        await gw.kill('SIGKILL');
        await gw.start();
        break;
      }
      case 'gateway-pause': {
        const gw = this.busiestGateway(n);
        rec.process = `${gw.name}/${gw.pid}`;
        inject(`SIGSTOP gateway ${gw.name} (the busiest) for ${pauseMs / 1000} s, then SIGCONT`);
        rec.url = gw.url;
        gw.signal('SIGSTOP');
        await sleep(pauseMs);
        gw.signal('SIGCONT');
        break;
      }
    }
    rec.doneAt = Date.now();
  }
}
