// Closed-loop webhook load in its own process: `connections` keep-alive connections, each sending the next
// Standard-Webhooks-signed 512-byte webhook (a new id every time) as soon as the previous one is answered.
// Correctness as it measures: every answer must be 2xx "accepted" (never "duplicate": each id is new), and
// every acknowledged seq must be distinct (a seq acknowledged twice would be two events stored as one).
import { Agent } from 'node:http';
import { randomUUID } from 'node:crypto';
import { serve } from '../lib/workers.mjs';
import { Histogram, nowMs, postJson, signStandardWebhook, webhookBody } from '../lib/util.mjs';


serve({
  async run({ url, connections = 64, warmupMs = 2_000, durationMs = 10_000, size = 512 }) {
    const agent = new Agent({ keepAlive: true, maxSockets: connections });
    const target = new URL('/webhooks/bench', url);
    const hist = new Histogram();
    const statuses = {};
    const seen = new Set();
    let duplicateSeqs = 0;
    let duplicateAnswers = 0;
    let measured = 0;
    let non2xx = 0;
    let total = 0;
    let accepted = 0;
    let n = 0;
    const t0 = nowMs();
    const measureFrom = t0 + warmupMs;
    const end = measureFrom + durationMs;
    const loop = async () => {
      while (nowMs() < end) {
        const id = `msg_${randomUUID()}`;
        const body = webhookBody(n++, nowMs(), size);
        const started = nowMs();
        const r = await postJson(agent, target, signStandardWebhook(id, body), body);
        const done = nowMs();
        total++;
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 202 && r.json?.status === 'accepted') {
          accepted++;
          const seq = r.json.seq;
          if (seen.has(seq)) duplicateSeqs++;
          else seen.add(seq);
        } else if (r.json?.status === 'duplicate') duplicateAnswers++;
        if (r.status < 200 || r.status >= 300) non2xx++;
        if (started >= measureFrom && done <= end) {
          measured++;
          hist.add(done - started);
        }
      }
    };
    await Promise.all(Array.from({ length: connections }, loop));
    agent.destroy();
    let maxSeq = 0;
    for (const s of seen) if (s > maxSeq) maxSeq = s;
    return {
      rps: measured / (durationMs / 1000),
      measured,
      latency: hist.summary(),
      hist: hist.toJSON(),
      non2xx,
      total,
      accepted,
      statuses,
      duplicateSeqs,
      duplicateAnswers,
      maxSeq,
      distinctSeqs: seen.size,
    };
  },
});
