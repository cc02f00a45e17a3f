/**
 * The `stream:` and `idempotency:` sections: how long and how much the event log keeps, and how long a delivery
 * id is remembered for duplicate detection, with their defaults and the checks between them.
 */
import type { AppConfig } from './app-config.types.js';
import type { FileConfigDto } from './config.dto.js';
import { durationOr, sizeOr } from './units.js';

export function loadStream(dto: FileConfigDto, problems: string[]): AppConfig['stream'] {
  const stream = dto.stream ?? {};
  const maxAgeMs = durationOr(stream.maxAge, 7 * 86_400_000);
  const duplicateWindowMs = durationOr(stream.duplicateWindow, 120_000);
  if (duplicateWindowMs > maxAgeMs) problems.push('stream.duplicateWindow must not exceed stream.maxAge');
  if (duplicateWindowMs < 100) problems.push('stream.duplicateWindow must be at least 100ms');
  return {
    name: stream.name ?? 'EVENTS',
    subjectPrefix: stream.subjectPrefix ?? 'events',
    maxAgeMs,
    maxBytes: sizeOr(stream.maxBytes, 10 * 1024 ** 3),
    replicas: stream.replicas ?? 1,
    duplicateWindowMs,
  };
}

export function loadIdempotency(dto: FileConfigDto): AppConfig['idempotency'] {
  return { ttlMs: durationOr(dto.idempotency?.ttl, 72 * 3_600_000) };
}
