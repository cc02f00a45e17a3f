/** Builds the registry over the event store's metadata, when the store keeps any. */
import type { AppConfig } from '../config/app-config.js';
import type { AppLogger } from '../logging/logger.js';
import type { EventStore } from '../store/event-store.port.js';
import { type SchemaBucket, SchemaRegistry } from './schema-registry.js';

/** The bucket name the registry keeps its versions and settings in. */
export const SCHEMAS_BUCKET = 'schemas';

interface WithMetadata {
  metadata?: () => { bucket(name: string): Promise<SchemaBucket> };
}

export function createSchemaRegistry(config: AppConfig, store: EventStore, logger: AppLogger): SchemaRegistry {
  const metadata = (store as EventStore & WithMetadata).metadata?.bind(store);
  const log = logger.child({ component: 'schemas' });
  let failing = false;
  return new SchemaRegistry({
    declared: config.schemas,
    subjectPrefix: config.stream.subjectPrefix,
    publicUrl: config.server.publicUrl,
    openBucket: metadata ? () => metadata().bucket(SCHEMAS_BUCKET) : undefined,
    isConflict: (err) =>
      err instanceof Error &&
      (err.name === 'MetadataConflictError' || err.constructor.name === 'MetadataConflictError'),
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
