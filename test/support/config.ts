/**
 * Builds AppConfig objects for tests through the real loader, so tests exercise the same parsing and
 * defaults as production: the file part goes to a temp JSON file named by HOOKSTREAM_CONFIG.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type AppConfig } from '../../src/config/app-config.js';

export interface TestConfigOverrides {
  /** NATS_URL; unset means the embedded store. */
  natsUrl?: string;
  /** DATA_DIR for the embedded store. */
  dataDir?: string;
  /** Config-file content, written as in hookstream.yaml (durations and sizes as strings). */
  file?: Record<string, unknown>;
  /** Extra environment variables (e.g. values for `${NAME}` in the file). */
  env?: Record<string, string>;
}

let counter = 0;

/** A unique stream name per call, so test files and cases never share a stream. */
export function uniqueStreamName(prefix = 'T'): string {
  counter += 1;
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter}`;
}

export function testConfig(overrides: TestConfigOverrides = {}): AppConfig {
  const dir = mkdtempSync(join(tmpdir(), 'hookstream-config-'));
  try {
    const file = join(dir, 'hookstream.json');
    writeFileSync(file, JSON.stringify(overrides.file ?? {}));
    const env: Record<string, string | undefined> = { ...overrides.env, HOOKSTREAM_CONFIG: file, LOG_LEVEL: 'silent' };
    if (overrides.natsUrl) env.NATS_URL = overrides.natsUrl;
    if (overrides.dataDir) env.DATA_DIR = overrides.dataDir;
    return loadConfig(env);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
