/**
 * Builds and starts the gateway. `main.ts` calls `bootstrap()`; tests call `createApp()` with their
 * own config and listen on port 0.
 */
import 'reflect-metadata';
import { join, relative } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule, type AppModuleOptions } from './app.module.js';
import { type AppConfig, ConfigError, loadConfig } from './config/app-config.js';
import { ApiErrorFilter } from './common/api-error.js';
import { type AppLogger, createLogger, NestPinoLogger } from './logging/logger.js';
import type { EventStore } from './store/event-store.port.js';
import { EmbeddedEventStore } from './store/embedded/embedded-event-store.adapter.js';
import { JetStreamEventStore } from './store/jetstream/jetstream-event-store.adapter.js';
import { HookstreamIoAdapter } from './transports/io-adapter.js';
import { IngestService } from './ingest/ingest.service.js';
import { installWebhookFastPath } from './ingest/webhook-fast-path.js';
import { asApiError } from './ingest/ingest-refusal.js';
import { prebuiltFrameSupport } from './transports/prebuilt-frames.js';
import { installSseFastPath } from './transports/sse-fast-path.js';
import { SseStreams } from './transports/sse-streams.js';

export function createStore(config: AppConfig, logger: AppLogger): EventStore {
  if (config.natsUrl) return new JetStreamEventStore(config, logger.child({ component: 'jetstream' }));
  logger.warn(
    { dataDir: config.dataDir },
    'NATS_URL is not set: using the embedded single-node event log. It serves one process only; set NATS_URL to run replicas on a NATS JetStream cluster.',
  );
  return new EmbeddedEventStore(config, logger.child({ component: 'embedded' }));
}

export async function createApp(
  config: AppConfig,
  options: { logger?: AppLogger; store?: EventStore; outbound?: AppModuleOptions['outbound'] } = {},
): Promise<INestApplication> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const store = options.store ?? createStore(config, logger);
  const app = await NestFactory.create(AppModule.forRoot({ config, logger, store, outbound: options.outbound }), {
    bodyParser: false, // ingest reads raw bytes itself (signatures are over the exact body)
    forceCloseConnections: true,
    logger: new NestPinoLogger(logger.child({ component: 'nest' })),
  });
  const onUnexpected = (err: unknown) => logger.error({ err }, 'unhandled error');
  app.useGlobalFilters(new ApiErrorFilter(onUnexpected, asApiError));
  app.useWebSocketAdapter(new HookstreamIoAdapter(app, config));
  const frames = prebuiltFrameSupport();
  if (!frames.ok) {
    logger.warn(
      { problems: frames.problems },
      'Socket.IO fan-out without pre-built WebSocket frames: engine.io or ws changed what it relies on (see src/transports/prebuilt-frames.ts); every event is sent as a plain message, correct but slower',
    );
  }
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  const server = app.getHttpServer() as import('node:http').Server;
  // Before Socket.IO attaches (at init): the ingest hot path skips Express's router (webhook-fast-path.ts).
  installWebhookFastPath(server, app.get(IngestService), config, onUnexpected);
  // The same for SSE streams: nothing Express attaches to a request outlives it (sse-streams.ts).
  installSseFastPath(server, app.get(SseStreams), onUnexpected);
  // Node's own limits for hostile clients; ingest enforces ingest.bodyTimeout per request.
  server.headersTimeout = 20_000;
  server.requestTimeout = config.ingest.bodyTimeoutMs + 10_000;
  const http = app.getHttpAdapter().getInstance() as { disable(name: string): void; set(k: string, v: unknown): void };
  http.disable('x-powered-by');
  http.set('etag', false);
  return app;
}

/** Connections the kernel queues for accept(): enough for a reconnect storm of tens of thousands of clients. */
const LISTEN_BACKLOG = 65_535;

export async function bootstrap(env: Record<string, string | undefined> = process.env): Promise<INestApplication> {
  let config: AppConfig;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const app = await createApp(config, { logger });
  // Node's default accept backlog (511) overflows when thousands of clients reconnect at once (a restart, a
  // network blip): the kernel drops their SYNs and they retry after 1, 3, 7, 15 s… The kernel caps this at
  // net.core.somaxconn.
  // Nest passes extra arguments on to http.Server#listen(port, host, backlog, callback).
  const listen = app.listen.bind(app) as unknown as (port: number, host: string, backlog: number) => Promise<unknown>;
  await listen(config.port, config.host, LISTEN_BACKLOG);
  logger.info(
    {
      port: config.port,
      host: config.host,
      store: config.natsUrl ? 'jetstream' : 'embedded',
      sources: [...config.sources.keys()],
    },
    'hookstream listening',
  );
  logDemoSource(config, logger);
  return app;
}

/**
 * With `console.demoSource` set (config/demo.yaml), says once how to send that source a signed test webhook:
 * the command, which reads the secret from the config file itself. Logs never carry a secret.
 */
function logDemoSource(config: AppConfig, logger: AppLogger): void {
  const name = config.console.demoSource;
  const source = name === undefined ? undefined : config.sources.get(name);
  if (name === undefined || !source) return;
  const send = ['npm run send --', '--source', name];
  // scripts/send-webhook.mjs defaults to port 3000 and config/demo.yaml; name anything else explicitly.
  if (config.port !== 3000) send.push('--url', `http://127.0.0.1:${config.port}`);
  const file = config.configFile ? relative(process.cwd(), config.configFile) : undefined;
  if (file && file !== join('config', 'demo.yaml')) send.push('--config', file);
  logger.info(
    {
      demoSource: name,
      console: `http://localhost:${config.port}/console`,
      try: send.join(' '),
    },
    'demo source enabled: the command in "try" sends it a signed test webhook (never set console.demoSource in production)',
  );
}
