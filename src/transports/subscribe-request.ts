/**
 * Validation shared by both transports: shape, limits, patterns and the caller's grant.
 * Returns the refusal code, or the normalised request.
 */
import type { AppConfig } from '../config/app-config.js';
import { checkSubscribe, type Principal } from '../auth/auth.service.js';
import type { SubscribeErrorCode } from '../protocol/errors.js';

export type SubscribeRefusal = Extract<
  SubscribeErrorCode,
  'invalid_request' | 'invalid_subject' | 'forbidden' | 'limit_exceeded'
>;

export interface SubscribeRequest {
  patterns: string[];
  cursor?: string;
  from?: string;
}

export function checkSubscribeRequest(
  principal: Principal,
  req: SubscribeRequest,
  limits: AppConfig['limits'],
): SubscribeRefusal | null {
  if (req.patterns.length === 0) return 'invalid_subject';
  if (req.patterns.length > limits.patternsPerSubscription) return 'limit_exceeded';
  return checkSubscribe(principal, req.patterns);
}

/** The Socket.IO `subscribe` payload: `{subjects: string[], cursor?: string, from?: string}`, nothing else typed otherwise. */
export function parseSocketSubscribe(payload: unknown): SubscribeRequest | null {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return null;
  const { subjects, cursor, from } = payload as Record<string, unknown>;
  if (!Array.isArray(subjects) || !subjects.every((s) => typeof s === 'string')) return null;
  if (cursor !== undefined && cursor !== null && typeof cursor !== 'string') return null;
  if (from !== undefined && from !== null && typeof from !== 'string') return null;
  return { patterns: subjects as string[], cursor: cursor ?? undefined, from: from ?? undefined };
}
