/**
 * The soak run's figures, judgement and report: memory slopes over the second half (RSS, heap, the heap's
 * floor), CPU shares, the clients' gaps, duplicates and disorder, fds, consumers and NATS subscriptions back
 * to their baseline; each broken limit through `fail`, a table on stdout, and the summary returned.
 */
import { mib, slope, table } from './report.mjs';

const FD = 'hookstream_process_open_fds';

/**
 * @param {{minutes: number, rate: number, clients: number, tolerance: number, samples: object[], producer: object,
 *          departed: object[], made: number, before: object, after: object, consumersBefore: number,
 *          consumersAfter: number, subsBefore: number, subsAfter: number, failures: string[],
 *          fail: (what: string) => void}} run
 */
export function soakReport(run) {
  const { minutes, rate, clients, tolerance, samples, producer, departed, made, before, after } = run;
  const { consumersBefore, consumersAfter, subsBefore, subsAfter, failures, fail } = run;
  const halfMs = (minutes * 60_000) / 2;
  const second = samples.filter((s) => s.t >= halfMs);
  const perMin = (key) => {
    const r = slope(second.map((s) => [s.t / 60_000, s[key]]));
    return { slope: r.slope, stderr: r.stderr, mean: second.reduce((n, s) => n + s[key], 0) / second.length };
  };
  const rss = perMin('rss');
  const heap = perMin('heap');
  // The heap's floor: the lowest sample of every 30 s (just after a major GC), i.e. what stays alive. A leak
  // raises the floor; the sawtooth above it is garbage waiting for the collector.
  const floors = [];
  for (let from = halfMs; from < minutes * 60_000; from += 30_000) {
    const win = second.filter((s) => s.t >= from && s.t < from + 30_000);
    if (win.length) floors.push(win.reduce((m, s) => (s.heap < m.heap ? s : m)));
  }
  const heapFloor = slope(floors.map((s) => [s.t / 60_000, s.heap]));
  const growth = (r) => r.slope * (halfMs / 60_000);
  const peakClients = Math.max(...samples.map((s) => s.clients));
  const first = samples[0];
  const last = samples.at(-1);
  const cpuShare = (key) => (last[key] - first[key]) / ((last.t - first.t) / 1000);
  const producedFor = (producer.stoppedAt - producer.startedAt) / 1000;

  let gaps = 0;
  let dup = 0;
  let disorder = 0;
  let delivered = 0;
  for (const s of departed) {
    gaps += s.gaps.length;
    delivered += s.seqs.length;
    for (let i = 1; i < s.seqs.length; i++) {
      if (s.seqs[i] === s.seqs[i - 1]) dup++;
      else if (s.seqs[i] < s.seqs[i - 1]) disorder++;
    }
  }

  if (after[FD] > before[FD]) fail(`open fds ${after[FD]} after the run, ${before[FD]} before`);
  if (consumersAfter !== consumersBefore)
    fail(`the stream has ${consumersAfter} consumers after, ${consumersBefore} before`);
  if (subsAfter !== subsBefore) fail(`the gateway holds ${subsAfter} NATS subscriptions after, ${subsBefore} before`);
  if (growth(heapFloor) > tolerance) fail(`the heap's floor grows ${mib(growth(heapFloor))} over the second half`);
  if (growth(rss) > Math.max(tolerance, 0.1 * rss.mean)) {
    fail(`RSS grows ${mib(growth(rss))} over the second half (more than 10 % of its mean)`);
  }
  if (gaps || dup || disorder) fail(`clients saw ${gaps} gaps, ${dup} duplicates, ${disorder} out-of-order deliveries`);
  if (producer.acknowledged !== producer.created)
    fail(`${producer.created - producer.acknowledged} webhooks never got a 2xx`);

  const kib = (b) => `${(b / 1024).toFixed(0)} KiB/min`;
  console.log('\nSoak:');
  console.log(
    table(
      ['figure', 'value'],
      [
        ['duration', `${minutes} min`],
        ['webhooks acknowledged', `${producer.acknowledged} (${(producer.acknowledged / producedFor).toFixed(0)}/s)`],
        ['clients (peak connected, joins)', `${peakClients}, ${made}`],
        ['deliveries to clients', `${delivered} (${(delivered / producedFor).toFixed(0)}/s)`],
        [
          'CPU: gateway / test process (clients + provider)',
          `${(cpuShare('cpu') * 100).toFixed(0)} % / ${(cpuShare('selfCpu') * 100).toFixed(0)} % of one core`,
        ],
        ['RSS, second half: mean / slope ± se', `${mib(rss.mean)} / ${kib(rss.slope)} ± ${kib(rss.stderr)}`],
        ['heap used, second half: mean / slope ± se', `${mib(heap.mean)} / ${kib(heap.slope)} ± ${kib(heap.stderr)}`],
        [
          'heap floor (30 s minima), second half: slope ± se',
          `${kib(heapFloor.slope)} ± ${kib(heapFloor.stderr)} (${mib(Math.min(...floors.map((f) => f.heap)))}–${mib(Math.max(...floors.map((f) => f.heap)))})`,
        ],
        ['heap total / external, last sample', `${mib(samples.at(-1).heapTotal)} / ${mib(samples.at(-1).external)}`],
        ['open fds: before / after', `${before[FD]} / ${after[FD]}`],
        ['stream consumers: before / after', `${consumersBefore} / ${consumersAfter}`],
        ['NATS subscriptions of the gateway: before / after', `${subsBefore} / ${subsAfter}`],
        ['gaps / duplicates / out of order', `${gaps} / ${dup} / ${disorder}`],
      ],
    ),
  );
  const summary = {
    minutes,
    rate,
    clients,
    joins: made,
    acknowledged: producer.acknowledged,
    delivered,
    cpu: { gateway: cpuShare('cpu'), testProcess: cpuShare('selfCpu') },
    rss,
    heap,
    heapFloor,
    fds: { before: before[FD], after: after[FD] },
    consumers: { before: consumersBefore, after: consumersAfter },
    natsSubscriptions: { before: subsBefore, after: subsAfter },
    gaps,
    dup,
    disorder,
    failures,
  };
  return summary;
}
