/**
 * Serialises one text/event-stream block (WHATWG HTML §9.2). Every value is confined to its field: CR, LF and
 * NUL are removed from `event` and `id` (a browser ignores an id holding NUL), `data` and comments become one
 * line per line of the value, and `retry` must be a plain integer. So nothing a value holds — even if some day it
 * came from a client — can end a field early, start another field or end the block. Pure.
 */
export interface SseBlock {
  event?: string;
  id?: string;
  /** May span lines: each becomes its own `data:` line, and the browser joins them back with LF. */
  data?: string;
  retry?: number;
  comment?: string;
}

const LINE_BREAK = /\r\n|\r|\n/;
const SINGLE_LINE_UNSAFE = /[\r\n\0]/g;

function singleLine(v: string): string {
  return v.replace(SINGLE_LINE_UNSAFE, '');
}

function lines(v: string): string[] {
  return v.split(LINE_BREAK);
}

export function sseFrame(block: SseBlock): string {
  let out = '';
  if (block.comment !== undefined) for (const l of lines(block.comment)) out += `: ${l}\n`;
  if (block.retry !== undefined) {
    if (!Number.isSafeInteger(block.retry) || block.retry < 0)
      throw new RangeError(`invalid SSE retry: ${block.retry}`);
    out += `retry: ${block.retry}\n`;
  }
  if (block.event !== undefined) out += `event: ${singleLine(block.event)}\n`;
  if (block.id !== undefined) out += `id: ${singleLine(block.id)}\n`;
  if (block.data !== undefined) for (const l of lines(block.data)) out += `data: ${l}\n`;
  return `${out}\n`;
}
