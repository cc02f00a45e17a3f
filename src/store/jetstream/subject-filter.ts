/**
 * Narrows a subscriber's subject pattern to the stream's subject space `<prefix>.>`.
 * A consumer filter must lie inside the stream's subjects, but a caller may legitimately ask for `>` or
 * `*.acme.>`; the intersection with `<prefix>.>` is always one pattern, because the prefix is literal.
 */

/** The part of `filter` inside `<prefix>.>`, or null when they cannot share a subject. Throws on a malformed pattern. */
export function narrowFilter(filter: string, prefix: string): string | null {
  const tokens = filter.split('.');
  if (tokens.some((t) => t === '') || tokens.slice(0, -1).includes('>')) {
    throw new RangeError(`invalid subject pattern: ${JSON.stringify(filter)}`);
  }
  const head = prefix.split('.');
  for (let i = 0; i < head.length; i++) {
    const t = tokens[i];
    if (t === undefined) return null; // shorter than prefix + one token: no stream subject matches
    if (t === '>') return `${prefix}.>`;
    if (t !== '*' && t !== head[i]) return null;
  }
  if (tokens.length === head.length) return null;
  return [...head, ...tokens.slice(head.length)].join('.');
}

/** A concrete subject the stream stores: `<prefix>.<token>…`, no wildcard, no empty token, no whitespace. */
export function isStreamSubject(subject: string, prefix: string): boolean {
  if (!subject.startsWith(`${prefix}.`)) return false;
  return subject.split('.').every((t) => t !== '' && t !== '*' && t !== '>' && !/\s/.test(t));
}
