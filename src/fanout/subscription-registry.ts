/**
 * The process's subscriptions: routes each live event to those whose patterns match it, holds the replay slots
 * their store catch-ups share (fairly per client connection), and closes a slow consumer's connection once.
 */
import { PatternIndex } from '../events/pattern.js';
import { Semaphore } from './async-tools.js';
import type { Delivery, DeliverySink, FanoutLogger, FanoutMetrics } from './fanout.types.js';
import type { FanoutSubscription } from './subscription.js';

export class SubscriptionRegistry {
  /** Store catch-up reads in flight, capped per process and per connection. */
  readonly replays: Semaphore;
  private readonly index = new PatternIndex<FanoutSubscription>();
  private readonly subs = new Map<string, FanoutSubscription>();
  private counter = 0;
  /** Connections already asked to close as slow consumers. */
  private readonly closedSlow = new WeakSet<object>();

  constructor(
    concurrentReplays: number,
    replaysPerConnection: number,
    private readonly metrics: FanoutMetrics,
    private readonly log: FanoutLogger,
  ) {
    this.replays = new Semaphore(concurrentReplays, replaysPerConnection);
  }

  get size(): number {
    return this.subs.size;
  }

  /** A new id, unique in this process (`s12`). */
  nextId(): string {
    return `s${++this.counter}`;
  }

  add(sub: FanoutSubscription): void {
    for (const p of sub.patterns) this.index.add(p, sub);
    this.subs.set(sub.id, sub);
  }

  remove(sub: FanoutSubscription): void {
    for (const p of sub.patterns) this.index.remove(p, sub);
    this.subs.delete(sub.id);
  }

  get(id: string): FanoutSubscription | undefined {
    return this.subs.get(id);
  }

  /** Sends one live event to every matching subscription; returns how many sent it on. */
  route(d: Delivery): number {
    let sent = 0;
    this.index.forEachMatch(d.subject, (sub) => {
      try {
        sent += sub.onLive(d);
      } catch (err) {
        // A failing sink must not keep the event from the other subscriptions.
        this.log.error({ err, subscription: sub.id, seq: d.seq }, 'live delivery failed');
      }
    });
    return sent;
  }

  /** Calls fn for every subscription (over a copy: fn may close some); one failing sink does not stop the rest. */
  forEach(fn: (sub: FanoutSubscription) => void): void {
    for (const sub of [...this.subs.values()]) {
      try {
        fn(sub);
      } catch (err) {
        this.log.error({ err, subscription: sub.id }, 'subscription update failed');
      }
    }
  }

  /** Live events held in hand-off buffers, all subscriptions together. */
  buffered(): number {
    let n = 0;
    for (const sub of this.subs.values()) n += sub.inspect().buffered;
    return n;
  }

  /** Asks the sink's connection to close as a slow consumer (once per connection). */
  closeSlow(sink: DeliverySink): void {
    const owner = sink.owner ?? sink;
    if (this.closedSlow.has(owner)) return;
    this.closedSlow.add(owner);
    this.metrics.slowConsumerClosed?.();
    sink.slowConsumer?.();
  }
}
