import { describe, expect, it } from '@jest/globals';
import { Parser } from '@asyncapi/parser';
import { parse as parseYaml, stringify } from 'yaml';
import { buildAsyncApi, componentKey } from './asyncapi.js';

const ERROR = 0; // DiagnosticSeverity.Error

async function errorsOf(doc: unknown): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(stringify(doc));
  return diagnostics.filter((d) => d.severity === ERROR).map((d) => `${d.path.join('/')}: ${d.message}`);
}

const tree = {
  $defs: {
    node: {
      type: 'object',
      properties: { name: { type: 'string' }, children: { type: 'array', items: { $ref: '#/$defs/node' } } },
    },
    money: { type: 'integer', minimum: 0 },
  },
  type: 'object',
  properties: { root: { $ref: '#/$defs/node' }, total: { $ref: '#/$defs/money' } },
  required: ['total'],
};

describe('buildAsyncApi', () => {
  const doc = buildAsyncApi({
    title: 'Hookstream',
    version: '0.1.0',
    publicUrl: 'https://hooks.example.com/gw',
    subjectPrefix: 'events',
    sources: [
      { name: 'acme', verifier: 'standard-webhooks' },
      { name: 'git_hub', verifier: 'github' },
    ],
    subjects: [
      {
        subject: 'events.billing.tree',
        version: 3,
        schema: tree,
        dataschema: 'https://hooks.example.com/gw/v1/schemas/events.billing.tree/versions/3',
      },
      {
        subject: 'events.billing.plain',
        version: 1,
        schema: { type: 'string', $id: 'https://example.com/x' },
        dataschema: 'https://hooks.example.com/gw/v1/schemas/events.billing.plain/versions/1',
      },
    ],
  });

  it('parses with the official AsyncAPI parser without any error, $defs and recursive $ref included', async () => {
    expect(await errorsOf(doc)).toEqual([]);
    // The YAML form is the same document.
    expect(parseYaml(stringify(doc))).toEqual(doc);
  });

  it('names every source and subject, with the latest schema as the event data', async () => {
    const { document } = await new Parser().parse(JSON.stringify(doc));
    if (!document) throw new Error('no document');
    const addresses = document
      .channels()
      .all()
      .map((c) => c.address());
    expect(addresses).toEqual(
      expect.arrayContaining([
        '/webhooks/acme',
        '/webhooks/git_hub',
        'events.billing.tree',
        'events.billing.plain',
        '/v1/events',
      ]),
    );
    const message = document.components().messages().get(componentKey('events.billing.tree'));
    const data = message?.payload()?.properties()?.data;
    expect(data?.properties()?.total?.type()).toBe('integer');
    // The recursive reference resolves to the same schema inside the document.
    expect(data?.properties()?.root?.properties()?.children?.items()).toBeDefined();
    const actions = document
      .operations()
      .all()
      .map((o) => o.action());
    expect(actions).toEqual(expect.arrayContaining(['receive', 'send']));
  });

  it('fails the parse when a reference does not resolve (the check can fail)', async () => {
    const broken = structuredClone(doc) as any;
    broken.components.schemas[componentKey('events.billing.tree')].properties.total.$ref = '#/$defs/money';
    expect(await errorsOf(broken)).not.toEqual([]);
  });

  it('gives distinct keys to subjects that differ only in "." and "_"', () => {
    expect(componentKey('events.a_b')).not.toBe(componentKey('events.a.b'));
    expect(componentKey('events.a_b')).toMatch(/^[A-Za-z0-9_-]+$/);
  });
});
