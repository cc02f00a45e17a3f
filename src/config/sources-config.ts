/**
 * The `sources:` list (the webhook providers `POST /webhooks/<name>` accepts) and `console.demoSource`, the one
 * source the console may sign test webhooks for, which must be a source dedicated to demos.
 */
import type { AppConfig, SourceConfig } from './app-config.types.js';
import type { FileConfigDto } from './config.dto.js';
import { durationOr } from './units.js';

export function loadSources(dto: FileConfigDto, problems: string[]): Map<string, SourceConfig> {
  const sources = new Map<string, SourceConfig>();
  for (const [i, s] of (dto.sources ?? []).entries()) {
    if (sources.has(s.name)) problems.push(`sources[${i}].name: "${s.name}" is configured twice`);
    // `/v1/events` stores under `v1:<key id>:<id>`: a source of that name could claim (or be claimed by) those keys.
    if (s.name.toLowerCase() === 'v1') problems.push(`sources[${i}].name: "${s.name}" is reserved for POST /v1/events`);
    if (s.verifier === 'hmac' && !s.header) problems.push(`sources[${i}].header: the hmac verifier needs a header`);
    sources.set(s.name, {
      name: s.name,
      verifier: s.verifier,
      secrets: s.secrets,
      toleranceMs: durationOr(s.tolerance, 300_000),
      header: s.header?.toLowerCase(),
      algorithm: s.algorithm ?? 'sha256',
      encoding: s.encoding ?? 'hex',
      prefix: s.prefix ?? '',
      idHeader: s.idHeader?.toLowerCase(),
      typeField: s.typeField,
      defaultType: s.defaultType ?? 'webhook',
      demo: s.demo ?? false,
    });
  }
  return sources;
}

export function loadConsole(
  dto: FileConfigDto,
  sources: Map<string, SourceConfig>,
  problems: string[],
): AppConfig['console'] {
  const demoSource = dto.console?.demoSource;
  if (demoSource !== undefined && !sources.has(demoSource)) {
    problems.push(`console.demoSource: "${demoSource}" is not a configured source`);
  } else if (demoSource !== undefined && !sources.get(demoSource)?.demo) {
    // The button signs for anyone who can reach the page: it must never mint a real provider's events.
    problems.push(
      `console.demoSource: source "${demoSource}" is not marked "demo: true"; the console signs test webhooks only for a source dedicated to demos`,
    );
  }
  return { demoSource };
}
