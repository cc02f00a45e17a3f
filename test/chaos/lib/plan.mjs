/**
 * The chaos run's plan: the gateways' config file, where each subscriber connects and what it watches, and
 * when which fault is injected. Data only, so that a change to the scenario is a change to this file.
 */
import { sourcesConfig } from './producer.mjs';

/** The config file both gateways run with (an R3 stream, JWT subscribers, the outbound endpoints' key). */
export function gatewayConfig({ stream, jwtSecret, outbound }) {
  return {
    stream: { name: stream, replicas: 3, maxAge: '1d', duplicateWindow: '2m' },
    idempotency: { ttl: '1h' },
    sources: sourcesConfig(),
    auth: { jwt: { secret: jwtSecret }, anonymous: { subscribe: [] }, apiKeys: [outbound.apiKey] },
    delivery: outbound.delivery,
    ingest: { publishTimeout: '3s' },
    // A small ring, so that resumes after a pause or restart read the stream, not only memory.
    limits: { ringEvents: 256 },
  };
}

/** Subscriber layout: [transport, patterns, gateway index, start, join at (fraction of the run)]. */
export const LAYOUT = [
  ['socket', ['events.>'], 0, 'earliest', 0],
  ['socket', ['events.>'], 1, 'earliest', 0],
  ['socket', ['events.acme.>'], 0, 'latest', 0],
  ['socket', ['events.acme.>'], 1, 'earliest', 0],
  ['socket', ['events.beta.>'], 0, 'earliest', 0],
  ['socket', ['events.beta.>'], 1, 'latest', 0],
  ['socket', ['events.*.invoice.paid'], 0, 'earliest', 0],
  ['socket', ['events.*.invoice.paid'], 1, 'earliest', 0],
  ['socket', ['events.acme.order.*'], 0, 'earliest', 0],
  ['socket', ['events.acme.order.*'], 1, 'latest', 0],
  ['socket', ['events.acme.order.created', 'events.beta.user.*'], 0, 'earliest', 0],
  ['socket', ['events.acme.order.created', 'events.beta.user.*'], 1, 'earliest', 0],
  ['socket', ['events.beta.ping', 'events.acme.user.signup'], 0, 'earliest', 0],
  ['socket', ['events.acme.*.paid'], 1, 'earliest', 0],
  ['socket', ['events.>'], 0, 'earliest', 0.3],
  ['socket', ['events.acme.>'], 1, 'earliest', 0.3],
  ['socket', ['events.beta.user.login'], 0, 'earliest', 0.3],
  ['socket', ['events.>'], 1, 'latest', 0.55],
  ['socket', ['events.*.invoice.*'], 0, 'latest', 0.55],
  ['socket', ['events.acme.order.paid', 'events.beta.>'], 1, 'earliest', 0.55],
  ['sse', ['events.>'], 1, 'earliest', 0],
  ['sse', ['events.acme.>'], 0, 'earliest', 0],
  ['sse', ['events.beta.>', 'events.acme.invoice.paid'], 1, 'latest', 0],
  ['sse', ['events.*.user.*'], 0, 'earliest', 0.3],
  ['sse', ['events.>'], 1, 'latest', 0.55],
];

/** The fault plan: [at ms, kind]. Short: one of each. Full: the four kinds in rotation, every 15 s. */
export function faultPlan(short, runMs) {
  if (short) {
    return [
      [6_000, 'nats-kill'],
      [18_000, 'gateway-kill'],
      [27_000, 'gateway-pause'],
      [45_000, 'leader-restart'],
    ];
  }
  const kinds = ['nats-kill', 'gateway-kill', 'gateway-pause', 'leader-restart'];
  const plan = [];
  for (let at = 8_000, i = 0; at < runMs - 20_000; at += 15_000, i++) plan.push([at, kinds[i % kinds.length]]);
  return plan;
}

/** The joins of late subscribers: [at ms, fraction], one per distinct fraction in LAYOUT. */
export function joinPlan(runMs) {
  return [...new Set(LAYOUT.map((l) => l[4]).filter((f) => f > 0))].map((f) => [f * runMs, f]);
}
