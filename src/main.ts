import { bootstrap } from './bootstrap.js';
import { StoreLockedError } from './store/event-store.port.js';

bootstrap().catch((err: unknown) => {
  // A locked data directory is an operator's mistake, not a crash: say so in one line.
  const text = err instanceof StoreLockedError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`hookstream failed to start: ${text}\n`);
  process.exit(1);
});
