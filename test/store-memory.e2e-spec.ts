/**
 * The in-memory EventStore the fan-out unit specs run on, held to the same port contract as the JetStream and
 * embedded adapters, so what those specs prove rests on a double that behaves like the real stores.
 */
import { describeEventStoreContract } from './support/store-contract.js';
import { MemoryEventStore } from './support/memory-event-store.js';

describeEventStoreContract('memory (test double)', async () => {
  const store = new MemoryEventStore();
  await store.start();
  return { store, cleanup: () => store.stop() };
});
