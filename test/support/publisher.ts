/**
 * Publishing for the e2e suites: one batch over `POST /v1/events` with an API key, and a paced load
 * generator that publishes at a steady rate through several gateways until stopped.
 */
import { PUBLISH_KEY } from './tokens.js';
import type { PublishItem, PublishResult } from '../../src/ingest/ingest.service.js';

// The wire shapes of POST /v1/events are the service's own.
export type { PublishItem, PublishResult } from '../../src/ingest/ingest.service.js';

/** POST /v1/events with an API key; throws unless 202. */
export async function publishBatch(baseUrl: string, items: PublishItem[], key = PUBLISH_KEY): Promise<PublishResult[]> {
  const res = await fetch(`${baseUrl}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(items),
  });
  const text = await res.text();
  if (res.status !== 202) throw new Error(`POST /v1/events answered ${res.status}: ${text.slice(0, 300)}`);
  return (JSON.parse(text) as { results: PublishResult[] }).results;
}

export interface LoadOptions {
  /** Gateways to publish through, used in turn. */
  urls: string[];
  ratePerSecond: number;
  /** The i-th event (0-based, across the whole run). */
  item: (i: number) => PublishItem;
  /** Largest batch per request. Default 100. */
  maxBatch?: number;
}

/**
 * Publishes at a steady rate until stopped (a paced generator, not a test wait). Failed batches (e.g. 503 while
 * NATS is down) are counted and dropped; results hold what was accepted.
 */
export class LoadGenerator {
  readonly results: PublishResult[] = [];
  failures = 0;
  private stopped = false;
  private sent = 0;
  private readonly done: Promise<void>;

  constructor(private readonly opts: LoadOptions) {
    this.done = this.run();
  }

  get accepted(): number {
    return this.results.length;
  }

  private async run(): Promise<void> {
    const started = Date.now();
    const maxBatch = this.opts.maxBatch ?? 100;
    let turn = 0;
    while (!this.stopped) {
      const due = Math.floor(((Date.now() - started) / 1000) * this.opts.ratePerSecond) - this.sent;
      if (due <= 0) {
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      const n = Math.min(due, maxBatch);
      const items = Array.from({ length: n }, (_, k) => this.opts.item(this.sent + k));
      this.sent += n;
      const url = this.opts.urls[turn++ % this.opts.urls.length];
      try {
        this.results.push(...(await publishBatch(url, items)));
      } catch {
        this.failures++;
      }
    }
  }

  /** Stops and resolves once the request in flight has finished. */
  async stop(): Promise<PublishResult[]> {
    this.stopped = true;
    await this.done;
    return this.results;
  }
}
