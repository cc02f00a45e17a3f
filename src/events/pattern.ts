/**
 * NATS subject patterns (docs/protocol.md): `*` is exactly one token, `>` is one or more tokens and only last.
 * Matching, containment (for grants), one covering filter (for a JetStream consumer) and a token trie for routing.
 * Pure: no Nest or NATS import.
 */

export const MAX_PATTERN_LENGTH = 1024;
export const MAX_PATTERN_TOKENS = 32;

const LITERAL = /^[A-Za-z0-9_-]+$/;

/** Non-empty tokens, each `*`, `>` (last only) or `[A-Za-z0-9_-]+`; at most 32 tokens and 1024 characters. */
export function isValidPattern(p: string): boolean {
  if (typeof p !== 'string' || p.length === 0 || p.length > MAX_PATTERN_LENGTH) return false;
  const tokens = p.split('.');
  if (tokens.length > MAX_PATTERN_TOKENS) return false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === '*') continue;
    if (t === '>') {
      if (i !== tokens.length - 1) return false;
      continue;
    }
    if (!LITERAL.test(t)) return false;
  }
  return true;
}

/**
 * Whether a literal subject matches a pattern (assumed valid). Walks both strings in place (no split): it runs
 * once per event and subscription during replay. A wildcard never matches an empty token.
 */
export function matchesSubject(pattern: string, subject: string): boolean {
  let p = 0;
  let s = 0;
  const pl = pattern.length;
  const sl = subject.length;
  for (;;) {
    let pe = pattern.indexOf('.', p);
    if (pe < 0) pe = pl;
    let se = subject.indexOf('.', s);
    if (se < 0) se = sl;
    const plen = pe - p;
    if (plen === 1 && pattern.charCodeAt(p) === 0x3e /* > */) {
      // `>` needs at least one more non-empty token in the subject.
      return s < sl && se > s;
    }
    if (plen === 1 && pattern.charCodeAt(p) === 0x2a /* * */) {
      if (se === s) return false;
    } else {
      if (plen !== se - s) return false;
      for (let j = 0; j < plen; j++) if (pattern.charCodeAt(p + j) !== subject.charCodeAt(s + j)) return false;
    }
    const pDone = pe >= pl;
    const sDone = se >= sl;
    if (pDone || sDone) return pDone && sDone;
    p = pe + 1;
    s = se + 1;
  }
}

/**
 * `matchesSubject` for a fixed list of patterns (assumed valid), specialised once: a pattern without wildcards is
 * an equality, one whose only wildcard is a final `>` a prefix test (the `>` still needs one non-empty token),
 * anything else falls back to the walk. A subscription's catch-up tests every event of its backlog against its
 * patterns (a reconnect storm: thousands of resumes, each scanning thousands of ring entries), and nearly every
 * pattern is of the first two kinds.
 */
export function subjectMatcher(patterns: readonly string[]): (subject: string) => boolean {
  const tests = patterns.map(sharedTest);
  if (tests.length === 1) return tests[0];
  return (subject) => {
    for (const t of tests) if (t(subject)) return true;
    return false;
  };
}

/** Tests by pattern, shared by the subscriptions that use it (many clients watch the same pattern). */
const TESTS = new Map<string, (subject: string) => boolean>();
const MAX_SHARED_TESTS = 4096;

function sharedTest(pattern: string): (subject: string) => boolean {
  let test = TESTS.get(pattern);
  if (!test) {
    if (TESTS.size >= MAX_SHARED_TESTS) TESTS.clear();
    test = patternTest(pattern);
    TESTS.set(pattern, test);
  }
  return test;
}

function patternTest(pattern: string): (subject: string) => boolean {
  const star = pattern.split('.').indexOf('*') >= 0;
  if (!star && pattern !== '>' && !pattern.endsWith('.>')) return (subject) => subject === pattern;
  if (!star) {
    const prefix = pattern.slice(0, -1); // `a.b.` of `a.b.>` ('' for `>`)
    const n = prefix.length;
    return (subject) => subject.length > n && subject.charCodeAt(n) !== 0x2e /* . */ && subject.startsWith(prefix);
  }
  return (subject) => matchesSubject(pattern, subject);
}

/**
 * True iff every subject matched by `inner` is matched by `outer` (containment, not string prefix).
 * `events.>` ⊇ `events.acme.>`; `events.*` ⊉ `events.>`; `events.>` ⊉ `events` since `>` needs one token.
 * False when either pattern is invalid.
 */
export function patternContains(outer: string, inner: string): boolean {
  if (!isValidPattern(outer) || !isValidPattern(inner)) return false;
  if (outer === inner) return true;
  const o = outer.split('.');
  const i = inner.split('.');
  for (let k = 0; ; k++) {
    if (k < o.length && o[k] === '>') return k < i.length; // anything non-empty that inner puts here
    if (k >= o.length || k >= i.length) return o.length === i.length;
    const it = i[k];
    if (it === '>') return false; // inner reaches arbitrarily far, outer does not
    if (o[k] === '*') continue; // a literal or `*` in inner: one token either way
    if (it !== o[k]) return false; // literal in outer vs `*` or a different literal
  }
}

/** Whether some grant contains the pattern. */
export function allowedBy(grants: readonly string[], pattern: string): boolean {
  for (const g of grants) if (patternContains(g, pattern)) return true;
  return false;
}

/**
 * ONE pattern matching every subject any input matches, as narrow as this simple scheme allows: used as the
 * single filter of a JetStream consumer (server 2.9 takes only one).
 *
 * - an input containing all others is returned as is (it is then the narrowest possible);
 * - inputs of one length: position by position, the shared literal or `*`; `>` last if any input ends in `>`;
 * - otherwise, with m the shortest length: the first m-1 positions as above, then `>` (every input matches
 *   only subjects of at least m tokens).
 *
 * Inputs must be valid patterns; throws RangeError on an empty list.
 */
export function coveringPattern(patterns: readonly string[]): string {
  if (patterns.length === 0) throw new RangeError('coveringPattern needs at least one pattern');
  const first = patterns[0];
  if (patterns.every((p) => p === first)) return first;
  for (const candidate of patterns) {
    if (patterns.every((p) => patternContains(candidate, p))) return candidate;
  }
  const split = patterns.map((p) => p.split('.'));
  let min = Infinity;
  let max = 0;
  for (const t of split) {
    min = Math.min(min, t.length);
    max = Math.max(max, t.length);
  }
  // The shared token at position k, else `*`. Only called where no input has `>`.
  const generalise = (k: number): string => {
    const t = split[0][k];
    for (const s of split) if (s[k] !== t) return '*';
    return t;
  };
  const out: string[] = [];
  if (min === max) {
    for (let k = 0; k < min - 1; k++) out.push(generalise(k));
    // Last position: `>` if any input has it, else the shared literal or `*`.
    out.push(split.some((s) => s[min - 1] === '>') ? '>' : generalise(min - 1));
  } else {
    for (let k = 0; k < min - 1; k++) out.push(generalise(k));
    out.push('>');
  }
  return out.join('.');
}

interface TrieNode<V> {
  literal: Map<string, TrieNode<V>> | undefined;
  star: TrieNode<V> | undefined;
  /** Values of patterns ending exactly here. */
  values: Set<V> | undefined;
  /** Values of patterns ending with `>` right after this node. */
  rest: Set<V> | undefined;
}

const newNode = <V>(): TrieNode<V> => ({ literal: undefined, star: undefined, values: undefined, rest: undefined });

/**
 * Routes subjects to the values registered under matching patterns, as a token trie: a lookup visits only
 * branches that can match (the subject's literal child and `*` at each level, plus `>` leaves), never every entry.
 *
 * It holds a set of (pattern, value) pairs: adding a pair twice is a no-op, `size` counts pairs. A value
 * registered under several matching patterns is reported once per lookup.
 *
 * `forEachMatch` is the hot-path form: it reuses one scratch set, so a lookup allocates only the subject's
 * token array. `match` returns a fresh Set.
 */
export class PatternIndex<V> {
  private readonly root: TrieNode<V> = newNode();
  private count = 0;
  private scratch: Set<V> | undefined = new Set<V>();

  /** Number of (pattern, value) pairs held. */
  get size(): number {
    return this.count;
  }

  /** Registers value under pattern (assumed valid). Returns false if that pair was already there. */
  add(pattern: string, value: V): boolean {
    const tokens = pattern.split('.');
    let node = this.root;
    const last = tokens.length - 1;
    for (let k = 0; k < tokens.length; k++) {
      const t = tokens[k];
      if (t === '>' && k === last) {
        node.rest ??= new Set();
        return this.insert(node.rest, value);
      }
      if (t === '*') {
        node.star ??= newNode();
        node = node.star;
      } else {
        node.literal ??= new Map();
        let child = node.literal.get(t);
        if (!child) {
          child = newNode();
          node.literal.set(t, child);
        }
        node = child;
      }
    }
    node.values ??= new Set();
    return this.insert(node.values, value);
  }

  /** Removes the pair; prunes nodes left empty. Returns false if it was not there. */
  remove(pattern: string, value: V): boolean {
    const tokens = pattern.split('.');
    const path: TrieNode<V>[] = [this.root];
    let node: TrieNode<V> | undefined = this.root;
    const last = tokens.length - 1;
    let removed = false;
    for (let k = 0; k < tokens.length && node; k++) {
      const t = tokens[k];
      if (t === '>' && k === last) {
        removed = node.rest?.delete(value) ?? false;
        if (node.rest?.size === 0) node.rest = undefined;
        node = undefined;
        break;
      }
      node = t === '*' ? node.star : node.literal?.get(t);
      if (node) path.push(node);
    }
    if (node) {
      removed = node.values?.delete(value) ?? false;
      if (node.values?.size === 0) node.values = undefined;
    }
    if (!removed) return false;
    this.count--;
    // Prune empty nodes bottom-up. path[k] is reached from path[k-1] through tokens[k-1].
    for (let k = path.length - 1; k > 0; k--) {
      const n = path[k];
      if (n.values || n.rest || n.star || (n.literal && n.literal.size > 0)) break;
      const parent = path[k - 1];
      const t = tokens[k - 1];
      if (t === '*') parent.star = undefined;
      else {
        parent.literal?.delete(t);
        if (parent.literal?.size === 0) parent.literal = undefined;
      }
    }
    return true;
  }

  /** Every value whose pattern matches the literal subject, each once, in a fresh Set. */
  match(subject: string): Set<V> {
    const out = new Set<V>();
    this.collect(this.root, subject.split('.'), 0, out);
    return out;
  }

  /**
   * Calls fn once for each distinct value whose pattern matches the subject. Values are collected first, so fn
   * may add or remove entries (or look up again) safely.
   */
  forEachMatch(subject: string, fn: (value: V) => void): void {
    // A re-entrant call (from inside fn) gets its own set; the common case reuses the scratch one.
    const set = this.scratch ?? new Set<V>();
    this.scratch = undefined;
    try {
      this.collect(this.root, subject.split('.'), 0, set);
      for (const v of set) fn(v);
    } finally {
      set.clear();
      this.scratch = set;
    }
  }

  private insert(set: Set<V>, value: V): boolean {
    if (set.has(value)) return false;
    set.add(value);
    this.count++;
    return true;
  }

  private collect(node: TrieNode<V>, tokens: string[], k: number, out: Set<V>): void {
    if (k === tokens.length) {
      if (node.values) for (const v of node.values) out.add(v);
      return;
    }
    const t = tokens[k];
    if (t.length === 0) return; // an empty token matches nothing, as in matchesSubject
    if (node.rest) for (const v of node.rest) out.add(v);
    const lit = node.literal?.get(t);
    if (lit) this.collect(lit, tokens, k + 1, out);
    if (node.star) this.collect(node.star, tokens, k + 1, out);
  }
}
