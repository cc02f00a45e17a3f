/**
 * Start-up and shutdown order. Start: store, then the fan-out tap. SIGTERM: fail readiness, stop
 * accepting, let in-flight ingests finish, tell every client why it is being closed (so it resumes
 * elsewhere), stop the tap, then drain the store connection last.
 */
import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { APP_LOGGER, type AppLogger } from './logging/logger.js';
import { EVENT_STORE, type EventStore } from './store/event-store.port.js';
import { FanoutHub } from './fanout/fanout-hub.js';
import { IngestService } from './ingest/ingest.service.js';

@Injectable()
export class Lifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  draining = false;
  private readonly closers = new Set<(reason: 'shutdown') => Promise<void> | void>();

  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly hub: FanoutHub,
    private readonly ingest: IngestService,
    @Inject(APP_LOGGER) private readonly log: AppLogger,
  ) {}

  /** Transports register how to close their clients on shutdown. */
  onShutdown(closer: (reason: 'shutdown') => Promise<void> | void): () => void {
    this.closers.add(closer);
    return () => this.closers.delete(closer);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.store.start();
    await this.hub.start();
    this.log.info({ store: this.store.kind }, 'event store started');
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.draining = true;
    this.log.info({ signal }, 'shutting down: draining ingests and closing clients');
    this.ingest.stopAccepting();
    await this.ingest.drained(10_000);
    await Promise.allSettled([...this.closers].map((close) => close('shutdown')));
    await this.hub.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.stop();
    this.log.info('stopped');
  }
}
