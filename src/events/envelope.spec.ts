import { describe, expect, it } from '@jest/globals';
import { buildEnvelope, isJsonContentType, parseJsonBody } from './envelope.js';

describe('buildEnvelope', () => {
  const base = { id: 'msg_1', source: '/webhooks/acme', type: 'invoice.paid', timeMs: Date.UTC(2026, 10, 26, 17) };

  it('puts a JSON body in data', () => {
    const body = Buffer.from('{"a":1}');
    const e = buildEnvelope({
      ...base,
      sourceName: 'acme',
      contentType: 'application/json; charset=utf-8',
      json: { a: 1 },
      body,
    });
    expect(e).toEqual({
      specversion: '1.0',
      id: 'msg_1',
      source: '/webhooks/acme',
      type: 'invoice.paid',
      time: '2026-11-26T17:00:00.000Z',
      datacontenttype: 'application/json',
      data: { a: 1 },
      hookstreamsource: 'acme',
    });
    expect(JSON.parse(JSON.stringify(e))).toEqual(e);
  });

  it('keeps JSON null and scalars as data', () => {
    expect(
      buildEnvelope({ ...base, contentType: 'application/json', json: null, body: Buffer.from('null') }).data,
    ).toBeNull();
    expect(buildEnvelope({ ...base, contentType: 'application/json', json: 0, body: Buffer.from('0') }).data).toBe(0);
  });

  it('keeps a non-JSON body byte-exact in data_base64 with its content type', () => {
    const body = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41, 0x0d, 0x0a]);
    const e = buildEnvelope({ ...base, contentType: 'application/x-www-form-urlencoded', json: undefined, body });
    expect(e.data).toBeUndefined();
    expect(e.datacontenttype).toBe('application/x-www-form-urlencoded');
    expect(Buffer.from(e.data_base64 as string, 'base64').equals(body)).toBe(true);
    expect(e.hookstreamsource).toBeUndefined();
    expect('hookstreamsource' in e).toBe(false);
  });

  it('defaults the content type of a non-JSON body', () => {
    expect(buildEnvelope({ ...base, contentType: undefined, json: undefined, body: Buffer.alloc(0) })).toMatchObject({
      datacontenttype: 'application/octet-stream',
      data_base64: '',
    });
    expect(buildEnvelope({ ...base, contentType: '  ', json: undefined, body: Buffer.from('x') }).datacontenttype).toBe(
      'application/octet-stream',
    );
  });
});

describe('isJsonContentType', () => {
  it.each([
    ['application/json', true],
    ['APPLICATION/JSON', true],
    ['application/json; charset=utf-8', true],
    ['application/json;charset=UTF-8', true],
    ['  application/json  ', true],
    ['application/cloudevents+json', true],
    ['application/vnd.github+json', true],
    ['application/merge-patch+json; charset=utf-8', true],
    [undefined, false],
    ['', false],
    ['text/json', false],
    ['text/plain', false],
    ['application/jsonp', false],
    ['application/json-seq', false],
    ['application/x-www-form-urlencoded', false],
    ['application/+json', false],
    ['application/a b+json', false],
    ['multipart/form-data', false],
    ['application/jsonx; a=application/json', false],
  ])('%j → %j', (ct, ok) => {
    expect(isJsonContentType(ct)).toBe(ok);
  });
});

describe('parseJsonBody', () => {
  const ok = (s: string | Buffer, depth = 100) => parseJsonBody(Buffer.isBuffer(s) ? s : Buffer.from(s), depth);

  it('parses valid JSON', () => {
    expect(ok('{"a":[1,{"b":"c"}]}')).toEqual({ ok: true, value: { a: [1, { b: 'c' }] } });
    expect(ok('"é😀"')).toEqual({ ok: true, value: 'é😀' });
    expect(ok(' 42 ')).toEqual({ ok: true, value: 42 });
    expect(ok('null')).toEqual({ ok: true, value: null });
  });

  it('refuses what is not JSON', () => {
    for (const s of ['', '{', '{"a":1', "{'a':1}", 'undefined', '{"a":1}x', 'NaN']) expect(ok(s).ok).toBe(false);
  });

  it('refuses invalid UTF-8', () => {
    expect(ok(Buffer.from([0x22, 0xff, 0x22]))).toEqual({ ok: false, reason: expect.stringMatching(/UTF-8/) });
    expect(ok(Buffer.from([0x22, 0xc3, 0x22])).ok).toBe(false); // truncated sequence
    expect(ok(Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])).ok).toBe(false); // encoded surrogate
    expect(ok(Buffer.from([0x22, 0xc0, 0xaf, 0x22])).ok).toBe(false); // overlong
  });

  it('refuses a BOM', () => {
    const r = ok(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]));
    expect(r).toEqual({ ok: false, reason: expect.stringMatching(/byte order mark/) });
  });

  it('counts depth of arrays and objects', () => {
    expect(ok('1', 0).ok).toBe(true);
    expect(ok('[]', 0).ok).toBe(false);
    expect(ok('[]', 1).ok).toBe(true);
    expect(ok('{"a":[{}]}', 3).ok).toBe(true);
    expect(ok('{"a":[{}]}', 2)).toEqual({ ok: false, reason: expect.stringMatching(/deeper than 2/) });
    expect(ok('[[],[],[[]]]', 3).ok).toBe(true);
    expect(ok('[[],[],[[[]]]]', 3).ok).toBe(false);
    expect(ok('['.repeat(100) + ']'.repeat(100), 100).ok).toBe(true);
    expect(ok('['.repeat(101) + ']'.repeat(101), 100).ok).toBe(false);
  });

  it('ignores brackets and escaped quotes inside strings', () => {
    expect(ok('["[[[[{{{{"]', 1)).toEqual({ ok: true, value: ['[[[[{{{{'] });
    expect(ok('["\\"[[[["]', 1)).toEqual({ ok: true, value: ['"[[[['] });
    expect(ok('["\\\\", [1]]', 1).ok).toBe(false); // the string ends after the escaped backslash
    expect(ok('{"a\\"[[":{"b":1}}', 2).ok).toBe(true);
  });

  it('refuses a million-deep body without reaching the parser', () => {
    const deep = Buffer.alloc(1_000_000, '[');
    const realParse = JSON.parse;
    let parsed = false;
    JSON.parse = ((...args: Parameters<typeof JSON.parse>) => {
      parsed = true;
      return realParse(...args);
    }) as typeof JSON.parse;
    try {
      expect(parseJsonBody(deep, 100)).toEqual({ ok: false, reason: expect.stringMatching(/deeper/) });
    } finally {
      JSON.parse = realParse;
    }
    expect(parsed).toBe(false);
  });
});
