/**
 * The `ingest:` and `limits:` sections: the bounds on one request, one connection and one process, with their
 * defaults (some derived from others) and the checks between them.
 */
import type { AppConfig } from './app-config.types.js';
import type { FileConfigDto } from './config.dto.js';
import { durationOr, parseSize, sizeOr } from './units.js';

export function loadIngestLimits(dto: FileConfigDto): AppConfig['ingest'] {
  const ingest = dto.ingest ?? {};
  return {
    maxBodyBytes: sizeOr(ingest.maxBodyBytes, 1024 ** 2),
    bodyTimeoutMs: durationOr(ingest.bodyTimeout, 30_000),
    maxJsonDepth: ingest.maxJsonDepth ?? 100,
    maxInFlight: ingest.maxInFlight ?? 4096,
    publishTimeoutMs: durationOr(ingest.publishTimeout, 3_000),
  };
}

export function loadLimits(dto: FileConfigDto, problems: string[]): AppConfig['limits'] {
  const limits = dto.limits ?? {};
  const subscriptionsPerConnection = limits.subscriptionsPerConnection ?? 100;
  // A reconnecting client resubscribes everything at once: the burst must hold that.
  const messageBurst = limits.messageBurst ?? Math.max(200, 2 * subscriptionsPerConnection);
  if (messageBurst < subscriptionsPerConnection) {
    problems.push(
      'limits.messageBurst must be at least limits.subscriptionsPerConnection (a reconnecting client resubscribes at once)',
    );
  }
  // Below one large envelope, a client could only ever be sent one event at a time.
  const bufferBytes = limits.clientBufferBytes === undefined ? null : parseSize(limits.clientBufferBytes);
  if (bufferBytes !== null && bufferBytes < 64 * 1024) {
    problems.push('limits.clientBufferBytes must be at least 64KB');
  }
  const connectionsPerProcess = limits.connectionsPerProcess ?? 50_000;
  return {
    subscriptionsPerConnection,
    patternsPerSubscription: limits.patternsPerSubscription ?? 32,
    connectionsPerProcess,
    clientBufferEvents: limits.clientBufferEvents ?? 1024,
    ringEvents: limits.ringEvents ?? 10_000,
    concurrentReplays: limits.concurrentReplays ?? 8,
    replaysPerConnection: limits.replaysPerConnection ?? 2,
    clientBufferBytes: sizeOr(limits.clientBufferBytes, 1024 ** 2),
    slowConsumerTimeoutMs: durationOr(limits.slowConsumerTimeout, 30_000),
    messagesPerSecond: limits.messagesPerSecond ?? 50,
    messageBurst,
    // Anonymous clients cannot take every slot: most stay for clients with credentials.
    anonymousConnections: limits.anonymousConnections ?? Math.max(1, Math.floor(connectionsPerProcess / 5)),
    connectionsPerIp: limits.connectionsPerIp ?? 1000,
  };
}
