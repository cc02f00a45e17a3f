import { describe, expect, it } from '@jest/globals';
import { SchemaCompiler, violationsOf } from './schema-validator.js';

describe('SchemaCompiler', () => {
  const compiler = new SchemaCompiler();

  it('reports every error with a JSON pointer into the data, escaping "/" as ~1', () => {
    const compiled = compiler.compile({
      type: 'object',
      required: ['id', 'a/b'],
      properties: {
        lines: { type: 'array', items: { type: 'object', properties: { total: { type: 'number' } } } },
        'a/b': { type: 'string' },
        email: { type: 'string', format: 'email' },
      },
    });
    if (!compiled.ok) throw new Error(compiled.message);
    const data = { lines: [{ total: 'x' }], 'a/b': 3, email: 'nope' };
    expect(compiled.validate(data)).toBe(false);
    const paths = violationsOf(compiled.validate.errors, 4).map((v) => [v.index, v.path]);
    expect(paths).toEqual(
      expect.arrayContaining([
        [4, '/id'],
        [4, '/lines/0/total'],
        [4, '/a~1b'],
        [4, '/email'],
      ]),
    );
    expect(compiled.validate({ id: 'x', 'a/b': 'y', email: 'a@example.com' })).toBe(true);
  });

  it('refuses what does not compile, with the compiler message', () => {
    expect(compiler.compile({ type: 'strnig' })).toEqual({ ok: false, message: expect.stringMatching(/type/) });
    expect(compiler.compile({ requried: ['x'] })).toEqual({ ok: false, message: expect.stringMatching(/requried/) });
    expect(compiler.compile([])).toEqual({ ok: false, message: 'a schema must be a JSON object' });
  });

  it('compiles two versions that share an $id', () => {
    expect(compiler.compile({ $id: 'https://example.com/s', type: 'string' }).ok).toBe(true);
    expect(compiler.compile({ $id: 'https://example.com/s', type: 'number' }).ok).toBe(true);
  });
});
