import { type DynamicModule, Module } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from './config/app-config.js';
import { Authenticator } from './auth/auth.service.js';
import { FanoutHub } from './fanout/fanout-hub.js';
import { HealthController } from './health/health.controller.js';
import { EventsController } from './ingest/events.controller.js';
import { IngestService } from './ingest/ingest.service.js';
import { WebhooksController } from './ingest/webhooks.controller.js';
import { Lifecycle } from './lifecycle.js';
import { APP_LOGGER, type AppLogger } from './logging/logger.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { MetricsService } from './metrics/metrics.service.js';
import { StatsController } from './metrics/stats.controller.js';
import { EVENT_STORE, type EventStore } from './store/event-store.port.js';
import { ConnectionRegistry } from './transports/connection-registry.js';
import { SocketGateway } from './transports/socket.gateway.js';
import { SseController } from './transports/sse.controller.js';
import { SseStreams } from './transports/sse-streams.js';
import { StaticController } from './static/static.controller.js';
import { ConsoleController } from './console/console.controller.js';
import { EndpointsController, OUTBOUND_SERVICE } from './outbound/endpoints.controller.js';
import { OutboundLifecycle } from './outbound/outbound.lifecycle.js';
import { OutboundService, type OutboundOptions } from './outbound/outbound.service.js';
import { createSchemaRegistry, SCHEMAS_STARTER } from './schemas/schemas.providers.js';
import { SchemaEnforcer } from './schemas/schema-enforcer.js';
import { SchemaRegistry } from './schemas/schema-registry.js';
import { SchemasController } from './schemas/schemas.controller.js';
import { AsyncApiController } from './schemas/asyncapi.controller.js';

export interface AppModuleOptions {
  config: AppConfig;
  logger: AppLogger;
  store: EventStore;
  /** Outbound webhooks: a resolver of its own for the SSRF guard (tests). */
  outbound?: Pick<OutboundOptions, 'resolver'>;
}

@Module({})
export class AppModule {
  static forRoot({ config, logger, store, outbound }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      controllers: [
        WebhooksController,
        EventsController,
        SseController,
        HealthController,
        MetricsController,
        StatsController,
        StaticController,
        ConsoleController,
        EndpointsController,
        SchemasController,
        AsyncApiController,
      ],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: APP_LOGGER, useValue: logger },
        { provide: EVENT_STORE, useValue: store },
        {
          provide: MetricsService,
          useFactory: () => {
            const metrics = new MetricsService();
            if (store.idempotencyRecords) metrics.watchIdempotencyRecords(() => store.idempotencyRecords!());
            return metrics;
          },
        },
        { provide: Authenticator, useFactory: () => new Authenticator(config.auth) },
        { provide: SchemaRegistry, useFactory: () => createSchemaRegistry(config, store, logger) },
        SCHEMAS_STARTER,
        {
          provide: SchemaEnforcer,
          inject: [SchemaRegistry, MetricsService],
          useFactory: (registry: SchemaRegistry, metrics: MetricsService) =>
            new SchemaEnforcer(registry, metrics.registry, logger.child({ component: 'schemas' })),
        },
        {
          provide: IngestService,
          inject: [MetricsService, SchemaEnforcer],
          useFactory: (metrics: MetricsService, schemas: SchemaEnforcer) =>
            new IngestService(config, store, metrics, undefined, schemas),
        },
        {
          provide: FanoutHub,
          inject: [MetricsService],
          useFactory: (m: MetricsService) => {
            const hub = new FanoutHub(
              store,
              {
                ringEvents: config.limits.ringEvents,
                clientBufferEvents: config.limits.clientBufferEvents,
                concurrentReplays: config.limits.concurrentReplays,
                replaysPerConnection: config.limits.replaysPerConnection,
                clientBufferBytes: config.limits.clientBufferBytes,
                slowConsumerMs: config.limits.slowConsumerTimeoutMs,
              },
              {
                // Deliveries are counted per transport by the outboxes (MetricsService.delivered).
                replayed: (n) => m.replayed.inc(n),
                gap: () => m.gaps.inc(),
                slowConsumer: () => m.slowConsumers.inc(),
                slowConsumerClosed: () => m.slowConsumerCloses.inc(),
                liveEvent: (seq, storeTimeMs) => {
                  m.liveSeq.set(seq);
                  m.lag.observe(Math.max(0, Date.now() - storeTimeMs) / 1000);
                },
              },
              logger,
            );
            m.watchReplays(() => hub.replays());
            return hub;
          },
        },
        {
          provide: OUTBOUND_SERVICE,
          inject: [MetricsService],
          useFactory: (m: MetricsService) => {
            const metadata = store.metadata();
            const queues = store.deliveryQueues?.();
            if (!queues) return null;
            const service = new OutboundService(
              config,
              store,
              queues,
              metadata,
              logger.child({ component: 'outbound' }),
              {
                resolver: outbound?.resolver,
                metrics: m.outboundHooks(),
              },
            );
            m.watchOutbound(() => service.snapshot());
            return service;
          },
        },
        OutboundLifecycle,
        Lifecycle,
        ConnectionRegistry,
        SseStreams,
        SocketGateway,
      ],
    };
  }
}
