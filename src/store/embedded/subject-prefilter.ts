/**
 * Turns a NATS subject pattern into what SQLite can filter on cheaply. The result is a superset of the exact
 * match (GLOB `*` also crosses dots); the reader applies `matchesSubject` on top, so SQL only saves work.
 */

export type SubjectPrefilter =
  /** No wildcard: one subject, served by the (subject, seq) index. */
  | { kind: 'literal'; subject: string }
  /** Wildcards: a GLOB checked during a seq-ordered scan. */
  | { kind: 'glob'; glob: string };

/** GLOB's own metacharacters, matched literally by bracketing them. */
const escapeGlob = (token: string): string => token.replace(/[*?[]/g, (c) => `[${c}]`);

export function subjectPrefilter(pattern: string): SubjectPrefilter {
  const tokens = pattern.split('.');
  if (!tokens.some((t) => t === '*' || t === '>')) return { kind: 'literal', subject: pattern };
  const glob = tokens.map((t, i) => (t === '*' ? '*' : t === '>' && i === tokens.length - 1 ? '?*' : escapeGlob(t)));
  return { kind: 'glob', glob: glob.join('.') };
}
