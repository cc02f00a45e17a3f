/**
 * The `schemas:` list of the config file: each subject's versions read from their files (JSON, or YAML) once at
 * start, relative to the config file's folder, and compiled so a bad schema stops start-up like any other bad value.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { validatePublishSubject } from '../events/subject.js';
import { SchemaCompiler } from '../schemas/schema-validator.js';
import type { SchemaDto } from './config.dto.js';

export type SchemaMode = 'enforce' | 'warn';
export type SchemaCompatibility = 'backward' | 'forward' | 'full' | 'none';

export interface DeclaredSchema {
  subject: string;
  /** Version n is `versions[n - 1]`. */
  versions: { file: string; schema: Record<string, unknown> }[];
  compatibility?: SchemaCompatibility;
  mode?: SchemaMode;
}

export function loadDeclaredSchemas(
  dtos: SchemaDto[] | undefined,
  configFile: string | undefined,
  subjectPrefix: string,
  problems: string[],
): DeclaredSchema[] {
  const base = configFile ? dirname(configFile) : process.cwd();
  const compiler = new SchemaCompiler();
  const seen = new Set<string>();
  const out: DeclaredSchema[] = [];
  for (const [i, dto] of (dtos ?? []).entries()) {
    const where = `schemas[${i}]`;
    if (!validatePublishSubject(dto.subject, subjectPrefix)) {
      problems.push(`${where}.subject: "${dto.subject}" is not a subject under "${subjectPrefix}." without wildcards`);
    }
    if (seen.has(dto.subject)) problems.push(`${where}.subject: "${dto.subject}" is declared twice`);
    seen.add(dto.subject);
    const versions: DeclaredSchema['versions'] = [];
    for (const [j, path] of dto.versions.entries()) {
      const file = resolve(base, path);
      let schema: unknown;
      try {
        const text = readFileSync(file, 'utf8');
        schema = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
      } catch (err) {
        problems.push(`${where}.versions[${j}]: cannot read ${file}: ${(err as Error).message}`);
        continue;
      }
      const compiled = compiler.compile(schema);
      if (!compiled.ok) {
        problems.push(`${where}.versions[${j}]: ${file} is not a usable JSON Schema: ${compiled.message}`);
        continue;
      }
      versions.push({ file, schema: schema as Record<string, unknown> });
    }
    out.push({ subject: dto.subject, versions, compatibility: dto.compatibility, mode: dto.mode });
  }
  return out;
}

/** `server.publicUrl` without a trailing slash; default `http://localhost:<PORT>`. */
export function publicUrlOf(value: string | undefined, port: number, problems: string[]): string {
  if (value === undefined) return `http://localhost:${port}`;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search || url.hash) {
    problems.push(`server.publicUrl: "${value}" must be an http or https URL without query or fragment`);
  }
  return value.replace(/\/+$/, '');
}
