/**
 * docs/configuration.md must document every key the config validation accepts and every environment variable
 * it reads, and nothing that does not exist. The keys are taken from the DTO's own metadata (class-validator for
 * the properties, class-transformer's @Type for nested objects and arrays), so a key added to config.dto.ts
 * without a line in the docs fails here, naming it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { getMetadataStorage, ValidationTypes } from 'class-validator';
import { EnvDto, FileConfigDto } from './config.dto.js';
import { NATS_ENV_VARS } from './nats-connection.js';

type Ctor = abstract new (...args: never[]) => unknown;

// class-transformer keeps @Type metadata in a storage its index does not export (and ships no types for the path).
const transformerStoragePath = 'class-transformer/cjs/storage.js';
const { defaultMetadataStorage } = (await import(transformerStoragePath)) as {
  defaultMetadataStorage: {
    findTypeMetadata(target: Ctor, property: string): { typeFunction: () => Ctor } | undefined;
  };
};

/** Dotted paths of every leaf key under `target`: `stream.name`, `sources[].verifier`, `auth.apiKeys[].key`. */
function configKeys(target: Ctor, prefix = ''): string[] {
  const metas = getMetadataStorage().getTargetValidationMetadatas(target, '', true, false);
  const byProperty = new Map<string, typeof metas>();
  for (const m of metas) byProperty.set(m.propertyName, [...(byProperty.get(m.propertyName) ?? []), m]);
  const keys: string[] = [];
  for (const [property, list] of byProperty) {
    const path = `${prefix}${property}`;
    const nested = list.find((m) => m.type === ValidationTypes.NESTED_VALIDATION);
    const type = defaultMetadataStorage.findTypeMetadata(target, property)?.typeFunction();
    if (nested && type) keys.push(...configKeys(type, `${path}${nested.each ? '[]' : ''}.`));
    else keys.push(path);
  }
  return keys;
}

const docPath = new URL('../../docs/configuration.md', import.meta.url);
const doc = readFileSync(docPath, 'utf8');
// The last section lists variables of tests and tools, which the gateway does not read.
const gatewayPart = doc.split(/^## Variables for tests and tools/m)[0];
/** The first cell of each table row, when it is one backticked name. */
const documentedNames = [...gatewayPart.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);

const missing = (keys: string[]) => keys.filter((k) => !documentedNames.includes(k));

describe('docs/configuration.md', () => {
  const fileKeys = configKeys(FileConfigDto);
  const envKeys = [...configKeys(EnvDto), ...NATS_ENV_VARS];

  it('is checked against the real key set (the walk finds nested objects and arrays)', () => {
    expect(fileKeys).toEqual(
      expect.arrayContaining(['stream.name', 'sources[].verifier', 'auth.jwt.secret', 'auth.apiKeys[].key']),
    );
    expect(envKeys).toEqual(expect.arrayContaining(['PORT', 'NATS_URL', 'LOG_LEVEL']));
  });

  it('documents every config file key', () => {
    const undocumented = missing(fileKeys);
    if (undocumented.length) {
      throw new Error(
        `config keys accepted by src/config/config.dto.ts but missing from docs/configuration.md ` +
          `(add a table row "| \`<key>\` | <default> | <meaning> |"):\n  ${undocumented.join('\n  ')}`,
      );
    }
  });

  it('documents every environment variable', () => {
    const undocumented = missing(envKeys);
    if (undocumented.length) {
      throw new Error(
        `environment variables read by EnvDto but missing from docs/configuration.md:\n  ${undocumented.join('\n  ')}`,
      );
    }
  });

  it('documents nothing the validation does not accept', () => {
    const known = new Set([...fileKeys, ...envKeys]);
    const stale = documentedNames.filter((name) => !known.has(name));
    if (stale.length) {
      throw new Error(
        `docs/configuration.md documents keys that config.dto.ts does not accept:\n  ${stale.join('\n  ')}`,
      );
    }
  });
});
