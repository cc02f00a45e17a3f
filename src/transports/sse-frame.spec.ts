/**
 * Properties of the SSE frame writer, checked with an independent parser written from WHATWG HTML §9.2.6:
 * whatever the values hold (CR, LF, CRLF, NUL, U+2028, lone surrogates…), a frame is exactly one block that
 * a browser reads back as exactly the fields given, and no line break ever lands inside a field.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { sseFrame, type SseBlock } from './sse-frame.js';

interface Parsed {
  /** Dispatched events: type, data and the last-event-id buffer at dispatch. */
  events: { type: string; data: string; lastEventId: string }[];
  retry?: number;
  comments: string[];
  /** Every (name, value) field seen, in order. */
  fields: [string, string][];
  lastEventId: string;
}

/** The spec's stream interpretation, for a complete stream (one or more blocks). */
function parseStream(stream: string): Parsed {
  const out: Parsed = { events: [], comments: [], fields: [], lastEventId: '' };
  let type = '';
  let data = '';
  // Lines end at CRLF, lone CR or lone LF; a trailing incomplete line is not processed.
  const all = stream.split(/\r\n|\r|\n/);
  all.pop();
  for (const line of all) {
    if (line === '') {
      if (data !== '') {
        out.events.push({
          type: type || 'message',
          data: data.endsWith('\n') ? data.slice(0, -1) : data,
          lastEventId: out.lastEventId,
        });
      }
      type = '';
      data = '';
      continue;
    }
    if (line.startsWith(':')) {
      out.comments.push(line.slice(1).replace(/^ /, ''));
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    out.fields.push([name, value]);
    if (name === 'event') type = value;
    else if (name === 'data') data += `${value}\n`;
    else if (name === 'id' && !value.includes('\0')) out.lastEventId = value;
    else if (name === 'retry' && /^[0-9]+$/.test(value)) out.retry = Number(value);
  }
  return out;
}

// Strings rich in the characters that matter: line breaks, NUL, SSE syntax and arbitrary code units.
const hostile = fc.oneof(
  fc.string({
    unit: fc.constantFrom('\r', '\n', '\0', ':', ' ', 'a', 'data: x', 'event: closing', 'id: 1', '\u2028', '\u0085'),
    maxLength: 30,
  }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
);

const normalise = (v: string) => v.replace(/\r\n|\r/g, '\n');

describe('sseFrame', () => {
  it('writes the documented frames exactly', () => {
    expect(sseFrame({ retry: 2000 })).toBe('retry: 2000\n\n');
    expect(sseFrame({ event: 'ready', id: 'abc_1', data: '{"cursor":"abc_1"}' })).toBe(
      'event: ready\nid: abc_1\ndata: {"cursor":"abc_1"}\n\n',
    );
    expect(sseFrame({ id: 'abc_2', data: '{}' })).toBe('id: abc_2\ndata: {}\n\n');
    expect(sseFrame({ comment: 'keep-alive' })).toBe(': keep-alive\n\n');
    expect(sseFrame({ event: 'closing', data: '{"reason":"token_expired"}' })).toBe(
      'event: closing\ndata: {"reason":"token_expired"}\n\n',
    );
  });

  it('cannot be made to inject a field or a block', () => {
    const frame = sseFrame({
      id: '1_1\n\nevent: closing\ndata: {}',
      event: 'x\r\ndata: evil',
      data: 'a\n\nevent: closing\r\ndata: {}',
    });
    const parsed = parseStream(frame);
    expect(parsed.events).toEqual([
      { type: 'xdata: evil', data: 'a\n\nevent: closing\ndata: {}', lastEventId: '1_1event: closingdata: {}' },
    ]);
    expect(parsed.fields.map(([n]) => n)).toEqual(['event', 'id', 'data', 'data', 'data', 'data']);
  });

  it('refuses a retry that is not a non-negative integer', () => {
    for (const r of [-1, 1.5, NaN, Infinity]) expect(() => sseFrame({ retry: r })).toThrow(RangeError);
  });

  it('is exactly one block, read back as the given fields, with no line break inside a field (property)', () => {
    fc.assert(
      fc.property(
        fc.record(
          { event: hostile, id: hostile, data: hostile, comment: hostile, retry: fc.nat() },
          { requiredKeys: [] },
        ),
        (block: SseBlock) => {
          const frame = sseFrame(block);
          // One block: it ends with a blank line and holds no other (a blank line is what ends a block).
          expect(frame.endsWith(Object.keys(block).length === 0 ? '\n' : '\n\n')).toBe(true);
          expect(
            frame
              .slice(0, -1)
              .split(/\r\n|\r|\n/)
              .slice(0, -1),
          ).not.toContain('');
          // CR never appears (it would end a line); LF only ends lines the writer meant to end.
          expect(frame).not.toMatch(/\r/);
          const parsed = parseStream(frame);
          for (const [name] of parsed.fields) expect(['event', 'id', 'data', 'retry']).toContain(name);
          const names = parsed.fields.map(([n]) => n);
          expect(names.filter((n) => n === 'event').length).toBe(block.event === undefined ? 0 : 1);
          expect(names.filter((n) => n === 'id').length).toBe(block.id === undefined ? 0 : 1);
          expect(names.filter((n) => n === 'retry').length).toBe(block.retry === undefined ? 0 : 1);
          if (block.retry !== undefined) expect(parsed.retry).toBe(block.retry);
          if (block.id !== undefined) expect(parsed.lastEventId).toBe(block.id.replace(/[\r\n\0]/g, ''));
          if (block.comment !== undefined) expect(parsed.comments.join('\n')).toBe(normalise(block.comment));
          if (block.data !== undefined) {
            // The data a browser hands to the listener is the value, line breaks normalised to LF.
            expect(parsed.events).toHaveLength(1);
            expect(parsed.events[0].data).toBe(normalise(block.data));
            expect(parsed.events[0].type).toBe(
              block.event === undefined || block.event.replace(/[\r\n\0]/g, '') === ''
                ? 'message'
                : block.event.replace(/[\r\n\0]/g, ''),
            );
          } else {
            expect(parsed.events).toHaveLength(0);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('concatenated frames stay separate blocks (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ id: hostile, data: hostile }), { minLength: 1, maxLength: 10 }), (blocks) => {
        const parsed = parseStream(blocks.map((b) => sseFrame(b)).join(''));
        expect(parsed.events.map((e) => e.data)).toEqual(blocks.map((b) => normalise(b.data as string)));
        expect(parsed.events.map((e) => e.lastEventId)).toEqual(
          blocks.map((b) => (b.id as string).replace(/[\r\n\0]/g, '')),
        );
      }),
      { numRuns: 500 },
    );
  });
});
