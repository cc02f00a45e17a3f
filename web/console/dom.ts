/**
 * DOM helpers every view of the console shares: element lookup, table cells, times, the notice line and hash
 * segments. Nothing here knows a view.
 */

export function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`console: #${id} is missing`);
  return el as T;
}

export function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** `hh:mm:ss.mmm` in local time; the current time when `iso` is not a string, '' when it is not a date. */
export function formatTime(iso: unknown): string {
  const d = typeof iso === 'string' ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A hash route segment, decoded; undefined when absent or not valid percent-encoding. */
export function decodeSegment(segment: string | undefined): string | undefined {
  try {
    return segment === undefined ? undefined : decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

const notice = $('notice');
let noticeTimer: ReturnType<typeof setTimeout> | undefined;

/** The line under the controls: information fades after a few seconds, an error stays until the next notice. */
export function notify(text: string, kind: 'info' | 'error' = 'info'): void {
  notice.textContent = text;
  notice.dataset.kind = kind;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  if (kind === 'info') noticeTimer = setTimeout(() => (notice.hidden = true), 6000);
}
