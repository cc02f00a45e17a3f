/**
 * Outbound webhooks in the config file: `delivery:` (timeouts, the retry schedule, when a failing endpoint is
 * disabled) and the `endpoints:` declared there, each checked by the same rules as an endpoint registered
 * through the API.
 */
import { decodeCursor, parseStart } from '../events/cursor.js';
import { isValidPattern } from '../events/pattern.js';
import { checkHeaders, isValidSecret, parseEndpointUrl } from '../outbound/endpoint-rules.js';
import type { DeliveryConfig, EndpointConfig } from './app-config.types.js';
import type { FileConfigDto } from './config.dto.js';
import { durationOr, parseDuration } from './units.js';

export function loadDelivery(dto: FileConfigDto, problems: string[]): DeliveryConfig {
  const d = dto.delivery ?? {};
  const retryScheduleMs = (d.retrySchedule ?? ['5s', '5m', '30m', '2h', '5h', '10h', '10h']).map(
    (v) => parseDuration(v) as number,
  );
  const timeoutMs = durationOr(d.timeout, 15_000);
  if (timeoutMs < 1) problems.push('delivery.timeout must be at least 1ms');
  return {
    timeoutMs,
    retryScheduleMs,
    jitter: d.jitter ?? 0.2,
    disableAfterMs: durationOr(d.disableAfter, 5 * 86_400_000),
    secretGraceMs: durationOr(d.secretGrace, 24 * 3_600_000),
    attemptRetentionMs: durationOr(d.attemptRetention, 7 * 86_400_000),
    allowPrivateNetworks: d.allowPrivateNetworks ?? false,
  };
}

export function loadEndpoints(dto: FileConfigDto, delivery: DeliveryConfig, problems: string[]): EndpointConfig[] {
  const out: EndpointConfig[] = [];
  const ids = new Set<string>();
  for (const [i, e] of (dto.endpoints ?? []).entries()) {
    const at = `endpoints[${i}]`;
    if (ids.has(e.id)) problems.push(`${at}.id: "${e.id}" is configured twice`);
    ids.add(e.id);
    const url = parseEndpointUrl(e.url, delivery.allowPrivateNetworks);
    if (!url.ok) problems.push(`${at}.url: ${url.reason}`);
    for (const p of e.patterns)
      if (!isValidPattern(p)) problems.push(`${at}.patterns: "${p}" is not a valid subject pattern`);
    if (!isValidSecret(e.secret)) problems.push(`${at}.secret: must be whsec_ followed by base64 of 24 to 64 bytes`);
    const headers = checkHeaders(e.headers);
    if (!headers.ok) problems.push(`${at}.headers: ${headers.reason}`);
    const from = e.from ?? 'latest';
    if (!parseStart(from) && !decodeCursor(from))
      problems.push(`${at}.from: must be earliest, latest, an RFC 3339 time or a cursor`);
    const ordering = e.ordering ?? 'unordered';
    out.push({
      id: e.id,
      url: e.url,
      patterns: e.patterns,
      description: e.description ?? '',
      from,
      ordering,
      maxInFlight: ordering === 'fifo' ? 1 : (e.maxInFlight ?? 16),
      rateLimit: e.rateLimit ?? null,
      headers: headers.ok ? headers.headers : {},
      secret: e.secret,
    });
  }
  return out;
}
