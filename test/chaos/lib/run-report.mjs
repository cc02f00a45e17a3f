/**
 * The chaos run's report: the faults, clients and outbound endpoints as tables, the summary table and
 * answer times on stdout, and everything (summary, faults, outages, sessions) in summary.json.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seconds, table } from './report.mjs';

/** Prints the report, writes `dir`/summary.json and returns the summary. */
export function report(r) {
  const { run, producer, subscribers, faults, ingest, clients, outbound, recovery, answers, tapStall } = r;
  const { verdicts } = clients;
  const { outboundVerdicts, records, endpointStates, drainedAt } = outbound;
  const { maxOutage, maxFirstIngest, longestIngestStall } = recovery;
  const { answerP99, answerMax, slowest } = answers;
  const attempts = producer.attempts;
  console.log(`\nFaults (${faults.length}):`);
  console.log(
    table(
      ['#', 'at', 'fault', 'first 2xx after', 'clients resumed', 'why', 'longest client outage'],
      faults.map((f, i) => [
        i,
        seconds(f.atRun),
        f.detail,
        seconds(f.firstIngestMs),
        f.clientsAffected,
        Object.entries(f.reasons)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
        seconds(f.maxClientOutageMs),
      ]),
    ),
  );
  console.log('\nClients:');
  console.log(
    table(
      ['client', 'patterns', 'start', 'sessions', 'expected', 'delivered', 'lost', 'dup', 'gaps'],
      verdicts.map(({ s, v }) => [
        s.name,
        s.patterns.join(' '),
        s.startSeq(),
        s.sessions.length,
        v.expected,
        v.delivered,
        v.lost,
        v.duplicated,
        v.gaps,
      ]),
    ),
  );
  console.log('\nOutbound endpoints:');
  console.log(
    table(
      [
        'endpoint',
        'patterns',
        'receiver down',
        'expected',
        'delivered',
        'lost',
        'requests',
        '2xx twice (excused)',
        'unverified',
        'attempt regressions (excused)',
        'order violations',
        'dead',
      ],
      outboundVerdicts.map(({ ep, v }) => {
        const rx = records[ep.name];
        return [
          `${ep.name}${ep.ordering ? ` (${ep.ordering})` : ''}`,
          ep.patterns.join(' '),
          seconds(rx.downs.reduce((ms, d) => ms + ((d.to ?? Date.now()) - d.from), 0)),
          v.expected,
          v.delivered,
          v.lost,
          v.requests,
          `${v.twice} (${v.twiceExcused + v.twiceLate + v.twiceUnacked})`,
          v.unverified,
          `${v.attemptRegressions} (${v.attemptRegressionsExcused})`,
          ep.ordering === 'fifo' ? v.orderViolations : '—',
          endpointStates[ep.name]?.dead ?? '?',
        ];
      }),
    ),
  );
  console.log(
    `Outbound drained ${drainedAt === null ? 'NOT within the drain period' : `${seconds(drainedAt - run.producedUntil)} after the load ended`}; ` +
      `excused (in brackets): a 2xx twice where a fault could have lost the first or the gateway logged the ` +
      `first as failed (answer after its timeout) or logged a failed ack just after it: ` +
      `${outboundVerdicts.map(({ ep, v }) => `${ep.name} ${v.twiceLate}+${v.twiceUnacked}`).join(', ')}; ` +
      `an attempt number going back around a NATS node kill; by fault: ` +
      `${JSON.stringify(Object.fromEntries(outboundVerdicts.map(({ ep, v }) => [ep.name, v.excusedBy])))}.`,
  );
  const summary = {
    mode: run.short ? 'short' : 'full',
    seconds: run.runMs / 1000,
    rate: run.rate,
    seed: run.seed,
    faults: faults.length,
    webhooks: producer.created,
    attempts,
    answers: producer.statusCounts,
    acknowledged: ingest.acked.length,
    stored: r.stored.length,
    storedUnacked: ingest.storedUnacked,
    delivered: clients.delivered,
    lost: ingest.ackedMissing + clients.clientLost,
    duplicated: ingest.storedTwice + clients.clientDup,
    reconnects: subscribers.reduce((n, s) => n + s.sessions.length - 1, 0),
    maxClientOutageMs: maxOutage.ms,
    maxClientOutage: maxOutage,
    maxFirstIngestAfterFaultMs: maxFirstIngest,
    longestIngestStallMs: longestIngestStall,
    answerP99Ms: answerP99,
    slowestAnswers: slowest,
    answerMaxMs: answerMax,
    liveTapStalls: tapStall,
    outbound: {
      drainedAfterLoadMs: drainedAt === null ? null : drainedAt - run.producedUntil,
      endpoints: Object.fromEntries(
        outboundVerdicts.map(({ ep, v }) => [ep.name, { ...v, state: endpointStates[ep.name] }]),
      ),
    },
    failures: r.failures,
  };
  console.log('\nSummary:');
  console.log(
    table(
      [
        'acknowledged',
        'stored',
        'delivered',
        'lost',
        'duplicated',
        'client resumes',
        'max client outage*',
        'max fault→2xx',
        'longest 2xx gap',
        'longest live-tap stall',
      ],
      [
        [
          summary.acknowledged,
          summary.stored,
          summary.delivered,
          summary.lost,
          summary.duplicated,
          summary.reconnects,
          `${seconds(maxOutage.ms)}${maxOutage.client ? ` (${maxOutage.client}, ${maxOutage.why})` : ''}`,
          seconds(maxFirstIngest),
          seconds(longestIngestStall),
          Object.entries(tapStall)
            .map(([g, v]) => `${g} ${seconds(v.ms)}`)
            .join(', '),
        ],
      ],
    ),
  );
  console.log(
    '* longest time a client was not live while webhooks were being acknowledged (from the last thing it heard)',
  );
  console.log(
    `\n${producer.created} webhooks in ${attempts} attempts; answers ${JSON.stringify(producer.statusCounts)}; ` +
      `${ingest.storedUnacked} stored but never answered 2xx.\nAnswer times (gateway not frozen): 2xx p99 ${answerP99.ok} ms, ` +
      `max ${answerMax.ok} ms; 503 p99 ${answerP99.unavailable} ms, max ${answerMax.unavailable} ms.`,
  );
  writeFileSync(
    join(run.dir, 'summary.json'),
    JSON.stringify(
      {
        summary,
        faults,
        outages: recovery.outages.map(({ fault, ...o }) => ({ ...o, fault: faults.indexOf(fault) })),
        sessions: Object.fromEntries(subscribers.map((s) => [s.name, s.sessions])),
      },
      null,
      2,
    ),
  );
  return summary;
}
