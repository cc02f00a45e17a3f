/**
 * Compatibility of two schema versions as sets of valid documents: `backward` (every document the latest version
 * accepts, the new one accepts), `forward` (the reverse), `full` (both), `none` (no check).
 *
 * The set inclusion itself is decided by json-schema-diff, which computes the documents one schema accepts and the
 * other refuses for the keywords it models (type, numeric and length bounds, properties, required,
 * additionalProperties, single-schema items, allOf / anyOf / oneOf / not). It ignores every other keyword, which
 * would make the answer permissive; so, before it runs, every keyword is accounted for here:
 *  - annotations (title, description, …) change no set and are dropped;
 *  - a self-contained constraint (enum, const, format, pattern, …) may be dropped where that can only make the
 *    answer stricter: from the schema whose documents must be accepted, anywhere a constraint only narrows it; from
 *    the accepting schema only where the other schema has at the same place a constraint that implies it (the same
 *    keyword and value, or an enum / const whose values are a subset);
 *  - anything else is refused with "cannot prove: …". Conservative, never permissive.
 */
import jsonSchemaDiff from 'json-schema-diff';

export const COMPATIBILITY_MODES = ['backward', 'forward', 'full', 'none'] as const;
export type Compatibility = (typeof COMPATIBILITY_MODES)[number];

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type SchemaNode = boolean | { [key: string]: Json };

/** The reasons a new version breaks the rule (empty: compatible). */
export async function checkCompatibility(mode: Compatibility, latest: object, next: object): Promise<string[]> {
  if (mode === 'none') return [];
  const reasons: string[] = [];
  if (mode === 'backward' || mode === 'full') {
    reasons.push(...(await includes(latest, next, 'the latest version', 'the new version')));
  }
  if (mode === 'forward' || mode === 'full') {
    reasons.push(...(await includes(next, latest, 'the new version', 'the latest version')));
  }
  return reasons;
}

/** Whether every document `sub` accepts is accepted by `sup`: the reasons it is not, or cannot be proven. */
export async function includes(sub: object, sup: object, subName: string, supName: string): Promise<string[]> {
  const reasons: string[] = [];
  const subInline = inlineRefs(sub as SchemaNode, `${subName}: `, reasons);
  const supInline = inlineRefs(sup as SchemaNode, `${supName}: `, reasons);
  if (reasons.length) return reasons;
  const subPrepared = prepare(
    subInline as Json,
    { role: 'sub', polarity: 1, path: '', conj: true, owner: subName },
    reasons,
  );
  const supPrepared = prepare(
    supInline as Json,
    { role: 'sup', polarity: 1, path: '', conj: true, counterpart: subInline, owner: supName },
    reasons,
  );
  if (reasons.length) return reasons;
  let result;
  try {
    result = await jsonSchemaDiff.diffSchemas({
      sourceSchema: subPrepared as never,
      destinationSchema: supPrepared as never,
    });
  } catch (err) {
    return [`cannot prove: the schemas could not be compared (${(err as Error).message})`];
  }
  if (!result.removalsFound) return [];
  return [
    `documents valid under ${subName} are refused by ${supName}, for example those matching ${shorten(
      JSON.stringify(result.removedJsonSchema),
    )}`,
  ];
}

const ANNOTATIONS = new Set([
  '$schema',
  '$id',
  '$anchor',
  '$comment',
  '$vocabulary',
  '$defs',
  'definitions',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
]);

/** Keywords json-schema-diff decides exactly. */
const MODELLED = new Set([
  'type',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'required',
]);

/**
 * Constraints that restrict only the value they sit on (with their group: `if` with `then` / `else`), so dropping
 * one can only widen the schema at that place.
 */
const GROUPS: Record<string, string[]> = {
  enum: ['enum'],
  const: ['const'],
  format: ['format'],
  pattern: ['pattern'],
  multipleOf: ['multipleOf'],
  uniqueItems: ['uniqueItems'],
  propertyNames: ['propertyNames'],
  dependentRequired: ['dependentRequired'],
  dependentSchemas: ['dependentSchemas'],
  contentEncoding: ['contentEncoding'],
  contentMediaType: ['contentMediaType'],
  contentSchema: ['contentSchema'],
  contains: ['contains', 'minContains', 'maxContains'],
  minContains: ['contains', 'minContains', 'maxContains'],
  maxContains: ['contains', 'minContains', 'maxContains'],
  if: ['if', 'then', 'else'],
  then: ['if', 'then', 'else'],
  else: ['if', 'then', 'else'],
};

interface Walk {
  role: 'sub' | 'sup';
  /** 1: a constraint here narrows the whole schema; -1: under `not`, it widens it; 0: under oneOf, either. */
  polarity: 1 | -1 | 0;
  /** JSON pointer of this node in the schema. */
  path: string;
  /** Reached from the root through `properties` and `items` only: a constraint here holds for the whole document. */
  conj: boolean;
  /** sup only: the sub schema's node at the same place, while `conj`. */
  counterpart?: SchemaNode;
  owner: string;
}

function prepare(node: Json | undefined, w: Walk, reasons: string[]): SchemaNode {
  if (typeof node === 'boolean') return node;
  if (!isObject(node)) {
    reasons.push(`cannot prove: ${w.owner} has ${JSON.stringify(node)} where a schema belongs, at ${w.path || '/'}`);
    return false;
  }
  const out: Record<string, Json> = {};
  const handledGroups = new Set<string>();
  for (const [key, value] of Object.entries(node)) {
    const here = `${w.path}/${key}`;
    if (ANNOTATIONS.has(key)) continue;
    if (MODELLED.has(key)) {
      out[key] = value;
      continue;
    }
    const counterpart = w.conj && isObject(w.counterpart) ? w.counterpart : undefined;
    switch (key) {
      case 'properties': {
        if (!isObject(value)) break;
        const props: Record<string, Json> = {};
        for (const [name, child] of Object.entries(value)) {
          const cp = counterpart && isObject(counterpart.properties) ? counterpart.properties[name] : undefined;
          props[name] = prepare(child, { ...w, path: `${here}/${escape(name)}`, counterpart: asCp(cp) }, reasons);
        }
        out[key] = props;
        continue;
      }
      case 'items':
        out[key] = prepare(value, { ...w, path: here, counterpart: asCp(counterpart?.items) }, reasons);
        continue;
      case 'additionalProperties':
        // Which names it covers depends on `properties`, which may differ between the two: no counterpart.
        out[key] = prepare(value, { ...w, path: here, conj: false }, reasons);
        continue;
      case 'allOf':
      case 'anyOf':
      case 'oneOf':
        if (!Array.isArray(value)) break;
        out[key] = value.map((child, i) =>
          prepare(
            child,
            { ...w, path: `${here}/${i}`, conj: false, polarity: key === 'oneOf' ? 0 : w.polarity },
            reasons,
          ),
        );
        continue;
      case 'not':
        out[key] = prepare(
          value,
          { ...w, path: here, conj: false, polarity: w.polarity === 0 ? 0 : w.polarity === 1 ? -1 : 1 },
          reasons,
        );
        continue;
    }
    const group = GROUPS[key];
    if (!group) {
      reasons.push(
        `cannot prove: ${w.owner} uses "${key}" at ${here || '/'}, which the compatibility check does not model`,
      );
      continue;
    }
    if (handledGroups.has(group[0])) continue;
    handledGroups.add(group[0]);
    const narrowsSub = w.role === 'sub' && w.polarity === 1;
    const widensSup = w.role === 'sup' && w.polarity === -1;
    const implied =
      w.role === 'sup' && w.polarity === 1 && counterpart !== undefined && implies(counterpart, node, group);
    if (narrowsSub || widensSup || implied) continue; // dropped: the answer can only get stricter
    reasons.push(
      w.role === 'sup' && w.polarity === 1 && w.conj
        ? `cannot prove: "${key}" at ${here} in ${w.owner} is new or changed (only an unchanged value, or an enum narrowed to a subset, can be compared)`
        : `cannot prove: ${w.owner} uses "${key}" at ${here} inside anyOf / oneOf / not / additionalProperties, where the check cannot compare it`,
    );
  }
  return out;
}

/** Whether `sub`'s constraint of this group implies `sup`'s (sup holds the group). */
function implies(sub: Record<string, Json>, sup: Record<string, Json>, group: string[]): boolean {
  if (group[0] === 'enum' || group[0] === 'const') {
    const allowed = 'const' in sup ? [sup.const] : Array.isArray(sup.enum) ? sup.enum : null;
    const given = 'const' in sub ? [sub.const] : Array.isArray(sub.enum) ? sub.enum : null;
    if (!allowed || !given) return false;
    // Both keywords may sit on one node: each of sup's must be implied on its own.
    if (
      'const' in sup &&
      'enum' in sup &&
      !(Array.isArray(sup.enum) && sup.enum.some((v) => jsonEqual(v, sup.const)))
    ) {
      return false;
    }
    return given.every((v) => allowed.some((a) => jsonEqual(a, v)));
  }
  return group.every((k) => (k in sup ? k in sub && jsonEqual(sub[k], sup[k]) : !(k in sub)));
}

/**
 * Replaces local `$ref`s (`#…` JSON pointers into the same schema) by what they point at, so both schemas are
 * compared as plain trees. A recursive or outside reference cannot be inlined: a reason.
 */
function inlineRefs(root: SchemaNode, owner: string, reasons: string[]): SchemaNode {
  const visit = (node: Json, stack: string[]): Json => {
    if (Array.isArray(node)) return node.map((n) => visit(n, stack));
    if (!isObject(node)) return node;
    const out: Record<string, Json> = {};
    // $defs are reached through the references that use them; unused ones change nothing.
    for (const [k, v] of Object.entries(node))
      if (k !== '$ref' && k !== '$defs' && k !== 'definitions') out[k] = visit(v, stack);
    const ref = node.$ref;
    if (ref === undefined) return out;
    if (typeof ref !== 'string' || !ref.startsWith('#')) {
      reasons.push(
        `cannot prove: ${owner}refers to ${JSON.stringify(ref)}; only references inside the schema are compared`,
      );
      return out;
    }
    if (stack.includes(ref)) {
      reasons.push(`cannot prove: ${owner}the reference ${ref} is recursive`);
      return out;
    }
    const target = resolvePointer(root, ref.slice(1));
    if (target === undefined) {
      reasons.push(`cannot prove: ${owner}the reference ${ref} points at nothing`);
      return out;
    }
    const inlined = visit(target, [...stack, ref]);
    const rest = Object.keys(out).filter((k) => !ANNOTATIONS.has(k));
    if (rest.length === 0) return inlined;
    // In 2020-12 a $ref beside other keywords is one more conjunct.
    const allOf = Array.isArray(out.allOf) ? out.allOf : [];
    return { ...out, allOf: [...allOf, inlined] };
  };
  return visit(root as Json, []) as SchemaNode;
}

function resolvePointer(root: SchemaNode, pointer: string): Json | undefined {
  if (pointer === '') return root as Json;
  if (!pointer.startsWith('/')) return undefined;
  let node: Json | undefined = root as Json;
  for (const raw of pointer.slice(1).split('/')) {
    const token = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) node = node[Number(token)];
    else if (isObject(node)) node = node[token];
    else return undefined;
  }
  return node;
}

function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asCp(v: Json | undefined): SchemaNode | undefined {
  return typeof v === 'boolean' || isObject(v) ? v : undefined;
}

function escape(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function shorten(text: string): string {
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}
