/** Builds the registry over the event store's metadata buckets. */
import type { Provider } from '@nestjs/common';
import type { AppConfig } from '../config/app-config.js';
import { Lifecycle } from '../lifecycle.js';
import type { AppLogger } from '../logging/logger.js';
import type { EventStore } from '../store/event-store.port.js';
import { MetadataConflictError } from '../store/metadata.port.js';
import { SchemaRegistry } from './schema-registry.js';

/** The bucket the registry keeps its versions and settings in. */
export const SCHEMAS_BUCKET = 'schemas';

export function createSchemaRegistry(config: AppConfig, store: EventStore, logger: AppLogger): SchemaRegistry {
  const log = logger.child({ component: 'schemas' });
  let failing = false;
  return new SchemaRegistry({
    declared: config.schemas,
    subjectPrefix: config.stream.subjectPrefix,
    publicUrl: config.publicUrl,
    openBucket: () => store.metadata().bucket(SCHEMAS_BUCKET),
    isConflict: (err) => err instanceof MetadataConflictError,
    onRefreshError: (err) => {
      // Once per outage, not once per second.
      if (!failing)
        log.warn({ err }, 'cannot reload the schema registry from the store; keeping the last loaded schemas');
      failing = true;
    },
    onRefreshed: () => {
      if (failing) log.info('schema registry reloaded from the store again');
      failing = false;
    },
  });
}

/**
 * Loads the registry once the store has started. Nest runs start-up hooks dependencies first, so depending on
 * Lifecycle (which starts the store) puts this after it; the app listens only once the registry is loaded (or
 * the store stayed unreachable for a few seconds), so no event skips its schema after a restart.
 */
export const SCHEMAS_STARTER: Provider = {
  provide: Symbol('SCHEMAS_STARTER'),
  inject: [SchemaRegistry, Lifecycle],
  useFactory: (registry: SchemaRegistry) => ({ onApplicationBootstrap: () => registry.start() }),
};
