import { describe, expect, it, jest } from '@jest/globals';
import { pageDelivery, storedDelivery } from './stored-delivery.js';

const enc = new TextEncoder();
const decoder = new TextDecoder();
const stored = (text: string) => ({ seq: 5, subject: 'events.a.b', data: enc.encode(text), time: 1 });

describe('storedDelivery', () => {
  it('keeps a JSON object envelope as its exact text and parses `event` only when asked', () => {
    const text = '{"specversion":"1.0","id":"x","data":{"n":[1,2]}}';
    const onNotObject = jest.fn();
    const d = storedDelivery(stored(text), 'e_5', decoder, onNotObject);
    expect({ cursor: d.cursor, seq: d.seq, subject: d.subject, json: d.json }).toEqual({
      cursor: 'e_5',
      seq: 5,
      subject: 'events.a.b',
      json: text,
    });
    expect(d.event).toEqual({ specversion: '1.0', id: 'x', data: { n: [1, 2] } });
    expect(onNotObject).not.toHaveBeenCalled();
  });

  it('accepts whitespace around an object, as JSON does', () => {
    const text = '\n  {\n  "a": 1\n}\r\n';
    const d = storedDelivery(stored(text), 'e_5', decoder, () => undefined);
    expect(d.json).toBe(text);
    expect(d.event).toEqual({ a: 1 });
  });

  it.each(['plain text', '', '   ', '[1,2]', '"a string"', '42', '{', '}', 'x{}', '{}x'])(
    'sends %j, which is not one object, as a JSON string holding the text, and reports it',
    (text) => {
      const onNotObject = jest.fn();
      const d = storedDelivery(stored(text), 'e_5', decoder, onNotObject);
      expect(d.json).toBe(JSON.stringify(text));
      expect(d.event).toBe(text);
      expect(onNotObject).toHaveBeenCalledWith(text, 5);
    },
  );
});

describe('pageDelivery', () => {
  it('carries the stored bytes themselves, and the same text as storedDelivery when asked', () => {
    const ev = stored('{"specversion":"1.0","id":"é"}');
    const d = pageDelivery(ev, 'e', decoder, () => undefined);
    expect(d.bytes).toBe(ev.data);
    expect({ cursor: d.cursor, cursorEpoch: d.cursorEpoch, seq: d.seq }).toEqual({
      cursor: 'e_5',
      cursorEpoch: 'e',
      seq: 5,
    });
    expect(d.json).toBe(storedDelivery(ev, 'e_5', decoder, () => undefined).json);
    expect(d.event).toEqual({ specversion: '1.0', id: 'é' });
  });

  it('sends what is not one object as storedDelivery does: a JSON string, with no bytes to splice', () => {
    const onNotObject = jest.fn();
    const d = pageDelivery(stored('[1,2]'), 'e', decoder, onNotObject);
    expect(d.bytes).toBeUndefined();
    expect(d.cursor).toBe('e_5');
    expect(d.json).toBe(JSON.stringify('[1,2]'));
    expect(onNotObject).toHaveBeenCalledWith('[1,2]', 5);
  });
});
