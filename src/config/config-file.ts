/**
 * The config file: found (HOOKSTREAM_CONFIG, else ./hookstream.yaml), read, parsed (YAML, or JSON when the name
 * ends in `.json`) and its `${NAME}` references replaced by environment variables. Validation comes after, on the
 * parsed tree; problems here are listed like every other.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument, Scalar, visit } from 'yaml';

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Replaces `${NAME}` with env var NAME; a missing variable is a problem, not an empty string. */
export function interpolate(text: string, env: Record<string, string | undefined>, problems: string[]): string {
  return text.replace(REFERENCE, (_m, name: string) => {
    const value = env[name];
    if (value === undefined) {
      problems.push(`config file refers to \${${name}}, but the environment variable ${name} is not set`);
      return '';
    }
    return value;
  });
}

const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;
const PLAIN_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;

/**
 * `${NAME}` is replaced inside the parsed values, never in the file's text: whatever the variable holds
 * (` #`, quotes, a newline, YAML syntax) arrives as it is. Only an unquoted YAML value made of one reference
 * to a number or true/false becomes that number or boolean, as the same text written there would.
 */
function interpolateYaml(text: string, env: Record<string, string | undefined>, problems: string[]): unknown {
  const doc = parseDocument(text);
  if (doc.errors.length) {
    const hint = text.includes('${') ? ' (inside [ ] or { }, write "${NAME}" in quotes)' : '';
    throw new Error(`${doc.errors[0].message}${hint}`);
  }
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const whole = node.type === Scalar.PLAIN && WHOLE_REFERENCE.test(node.value);
      const value = interpolate(node.value, env, problems);
      if (whole && PLAIN_NUMBER.test(value)) node.value = Number(value);
      else if (whole && (value === 'true' || value === 'false')) node.value = value === 'true';
      else node.value = value;
    },
  });
  return doc.toJS();
}

function interpolateJson(value: unknown, env: Record<string, string | undefined>, problems: string[]): unknown {
  if (typeof value === 'string') return value.includes('${') ? interpolate(value, env, problems) : value;
  if (Array.isArray(value)) return value.map((v) => interpolateJson(v, env, problems));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateJson(v, env, problems)]));
  }
  return value;
}

/** The parsed file (`{}` when there is none or it cannot be read) and its absolute path when one was found. */
export function readConfigFile(
  env: Record<string, string | undefined>,
  problems: string[],
): { raw: Record<string, unknown>; file?: string } {
  const explicit = env.HOOKSTREAM_CONFIG;
  const file = explicit ? resolve(explicit) : existsSync('hookstream.yaml') ? resolve('hookstream.yaml') : undefined;
  if (!file) return { raw: {} };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    problems.push(`HOOKSTREAM_CONFIG: cannot read ${file}: ${(err as Error).message}`);
    return { raw: {}, file };
  }
  try {
    const parsed: unknown = file.endsWith('.json')
      ? interpolateJson(JSON.parse(text), env, problems)
      : interpolateYaml(text, env, problems);
    if (parsed === null || parsed === undefined) return { raw: {}, file };
    if (typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push(`${file}: the top level must be a mapping`);
      return { raw: {}, file };
    }
    return { raw: parsed as Record<string, unknown>, file };
  } catch (err) {
    problems.push(`${file}: cannot parse: ${(err as Error).message}`);
    return { raw: {}, file };
  }
}
