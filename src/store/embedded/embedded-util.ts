/** Small helpers shared by the parts of the embedded store. */
import type Database from 'better-sqlite3';
import { StoreUnavailableError, type StoredEvent } from '../event-store.port.js';

export interface EmbeddedStoreLogger {
  info(o: object, msg?: string): void;
  warn(o: object, msg?: string): void;
  error(o: object, msg?: string): void;
}

/** Prepared statements, one per entry of a `{ name: sql }` map (embedded-schema.ts). */
export type StatementsOf<T> = { [K in keyof T]: Database.Statement };

/** Rows per retention or catch-up step. */
export const CHUNK = 1000;

export interface EventRow {
  seq: number;
  subject: string;
  time: number;
  data: Buffer;
}

/** better-sqlite3 hands out Buffers; callers get a plain Uint8Array view (as from JetStream), no copy. */
export function toEvent(r: EventRow): StoredEvent {
  return {
    seq: r.seq,
    subject: r.subject,
    time: r.time,
    data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength),
  };
}

/** A failed read statement, as the port reports it. */
export function readFailed(err: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`embedded event log read failed: ${(err as Error).message}`, { cause: err });
}

/** Resolves on the next check phase: lets appends, I/O and live fan-out run between two statements. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
