/**
 * How to reach NATS: the servers of NATS_URL and the credentials and TLS files from the environment.
 *
 * The NATS client does not read a user or password out of a server URL, so user info is taken out of the
 * URLs here and handed over as explicit options; what remains of the URLs is safe to log. Every credential
 * file is read and checked once at start, so a wrong path stops start-up instead of failing each connect.
 */
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';

/** The environment variables read here besides NATS_URL (docs/configuration.md lists each). */
export const NATS_ENV_VARS = [
  'NATS_USER',
  'NATS_PASSWORD',
  'NATS_TOKEN',
  'NATS_CREDS',
  'NATS_NKEY',
  'NATS_TLS_CA',
  'NATS_TLS_CERT',
  'NATS_TLS_KEY',
] as const;

export type NatsAuth =
  | { kind: 'none' }
  | { kind: 'user'; user: string; pass: string }
  | { kind: 'token'; token: string }
  /** A `.creds` file: the user JWT and its NKey seed. */
  | { kind: 'creds'; creds: Uint8Array }
  /** A bare NKey seed (`SU…`), for servers that list users by NKey. */
  | { kind: 'nkey'; seed: Uint8Array };

export interface NatsConnectionConfig {
  /** `scheme://host:port` per server, user info removed. */
  servers: string[];
  auth: NatsAuth;
  /** Set: the connection must be TLS (a `tls://` URL or any NATS_TLS_* variable). Files are paths. */
  tls?: { caFile?: string; certFile?: string; keyFile?: string };
}

type Env = Record<string, string | undefined>;

const SCHEMES = new Set(['nats', 'tls']);
// scheme://[userinfo@]host[:port][/], host a name, an IPv4 or a bracketed IPv6 address.
const SERVER_URL =
  /^(?:([A-Za-z][A-Za-z0-9+.-]*):\/\/)?(?:([^@/]*)@)?((?:\[[0-9A-Fa-f:.]+\]|[^@/:\s[\]]+)(?::\d{1,5})?)\/?$/;
const CREDS_BLOCK = /-{3,}[^\n]*-{3,}\r?\n\s*(\S+)\s*\r?\n\s*-{3,}[^\n]*-{3,}/g;
const USER_SEED = /^SU[A-Z2-7]{56}$/;

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

function decode(part: string, what: string, problems: string[]): string {
  try {
    return decodeURIComponent(part);
  } catch {
    problems.push(`NATS_URL: the ${what} in a server URL is not valid percent-encoding`);
    return part;
  }
}

function readable(name: string, path: string, problems: string[]): boolean {
  try {
    accessSync(path, fsConstants.R_OK);
    return true;
  } catch (err) {
    problems.push(`${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return false;
  }
}

function readCreds(path: string, problems: string[]): Uint8Array | undefined {
  if (!readable('NATS_CREDS', path, problems)) return undefined;
  const bytes = readFileSync(path);
  const blocks = [...bytes.toString('utf8').matchAll(CREDS_BLOCK)].map((m) => m[1]);
  if (blocks.length < 2 || !USER_SEED.test(blocks[1])) {
    problems.push(`NATS_CREDS: ${path} is not a NATS credentials file (a user JWT block, then a user NKey seed block)`);
    return undefined;
  }
  return bytes;
}

function readSeed(path: string, problems: string[]): Uint8Array | undefined {
  if (!readable('NATS_NKEY', path, problems)) return undefined;
  const seed = readFileSync(path, 'utf8').trim();
  if (!USER_SEED.test(seed)) {
    problems.push(`NATS_NKEY: ${path} does not hold a user NKey seed (58 characters starting with SU)`);
    return undefined;
  }
  return new TextEncoder().encode(seed);
}

/** Undefined when NATS_URL is unset (the embedded store). Problems never quote a credential. */
export function natsConnectionFromEnv(env: Env, problems: string[]): NatsConnectionConfig | undefined {
  const url = nonEmpty(env.NATS_URL);
  if (!url) return undefined;

  const servers: string[] = [];
  const fromUrl = new Set<string>();
  let urlAuth: NatsAuth = { kind: 'none' };
  let wantsTls = false;
  const entries = url
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const [i, entry] of entries.entries()) {
    const m = SERVER_URL.exec(entry);
    if (!m) {
      // Not quoted: a password with an unencoded `,` or `@` splits here, and part of it would be printed.
      problems.push(
        `NATS_URL: server ${i + 1} is not a URL such as nats://host:4222 (percent-encode special characters of a user or password)`,
      );
      continue;
    }
    const [, rawScheme, userInfo, hostPort] = m;
    const scheme = (rawScheme ?? 'nats').toLowerCase();
    if (!SCHEMES.has(scheme)) {
      problems.push(`NATS_URL: scheme "${scheme}" is not supported (use nats:// or tls://)`);
      continue;
    }
    if (scheme === 'tls') wantsTls = true;
    servers.push(`${scheme}://${hostPort}`);
    if (userInfo === undefined) continue;
    fromUrl.add(userInfo);
    const colon = userInfo.indexOf(':');
    // As in the other NATS clients: `user:pass@` is a user, a lone `token@` is a token.
    urlAuth =
      colon < 0
        ? { kind: 'token', token: decode(userInfo, 'token', problems) }
        : {
            kind: 'user',
            user: decode(userInfo.slice(0, colon), 'user', problems),
            pass: decode(userInfo.slice(colon + 1), 'password', problems),
          };
  }
  if (entries.length === 0) problems.push('NATS_URL: names no server');
  // The client signs in the same way to every server it (re)connects to.
  if (fromUrl.size > 1) problems.push('NATS_URL: the servers carry different credentials; give one set for all');

  const user = nonEmpty(env.NATS_USER);
  const password = nonEmpty(env.NATS_PASSWORD);
  const token = nonEmpty(env.NATS_TOKEN);
  const credsFile = nonEmpty(env.NATS_CREDS);
  const nkeyFile = nonEmpty(env.NATS_NKEY);
  if (password !== undefined && user === undefined) problems.push('NATS_PASSWORD is set without NATS_USER');
  if (user !== undefined && password === undefined) problems.push('NATS_USER is set without NATS_PASSWORD');

  const given: [string, () => NatsAuth | undefined][] = [];
  if (fromUrl.size > 0) given.push(['user info in NATS_URL', () => urlAuth]);
  if (user !== undefined) given.push(['NATS_USER', () => ({ kind: 'user', user, pass: password ?? '' })]);
  if (token !== undefined) given.push(['NATS_TOKEN', () => ({ kind: 'token', token })]);
  if (credsFile !== undefined) {
    given.push(['NATS_CREDS', () => mapDefined(readCreds(credsFile, problems), (creds) => ({ kind: 'creds', creds }))]);
  }
  if (nkeyFile !== undefined) {
    given.push(['NATS_NKEY', () => mapDefined(readSeed(nkeyFile, problems), (seed) => ({ kind: 'nkey', seed }))]);
  }
  let auth: NatsAuth = { kind: 'none' };
  if (given.length > 1) {
    problems.push(`NATS credentials: set only one of ${given.map(([name]) => name).join(', ')}`);
  } else if (given.length === 1) {
    auth = given[0][1]() ?? auth;
  }

  const caFile = nonEmpty(env.NATS_TLS_CA);
  const certFile = nonEmpty(env.NATS_TLS_CERT);
  const keyFile = nonEmpty(env.NATS_TLS_KEY);
  if ((certFile === undefined) !== (keyFile === undefined)) {
    problems.push('NATS_TLS_CERT and NATS_TLS_KEY go together (a client certificate and its key)');
  }
  if (caFile !== undefined) readable('NATS_TLS_CA', caFile, problems);
  if (certFile !== undefined) readable('NATS_TLS_CERT', certFile, problems);
  if (keyFile !== undefined) readable('NATS_TLS_KEY', keyFile, problems);
  const tls =
    wantsTls || caFile || certFile || keyFile
      ? {
          ...(caFile ? { caFile } : {}),
          ...(certFile ? { certFile } : {}),
          ...(keyFile ? { keyFile } : {}),
        }
      : undefined;

  return { servers, auth, tls };
}

function mapDefined<T, U>(v: T | undefined, f: (v: T) => U): U | undefined {
  return v === undefined ? undefined : f(v);
}
