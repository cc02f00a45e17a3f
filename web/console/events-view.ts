/**
 * The Events view and the connection behind it: one SDK client (Socket.IO or SSE, with the typed token), one
 * subscription at a time, the newest deliveries in a table, the selected one's JSON, pause/resume by cursor,
 * and the demo webhook. The header's counters and status badge are this view's too.
 */
import {
  createClient,
  type ClientStatus,
  type Delivery,
  type ErrorBody,
  type GapNotice,
  type HookstreamClient,
  type HookstreamError,
  type Subscription,
  type Transport,
  type WebhookAccepted,
} from '@hookstream/client';
import { $, cell, formatTime, notify } from './dom.js';
import { schemaHref } from './routes.js';

const MAX_ROWS = 500;

const ui = {
  status: $('status'),
  events: $('count-events'),
  gaps: $('count-gaps'),
  reconnects: $('count-reconnects'),
  token: $<HTMLInputElement>('token'),
  transport: $<HTMLSelectElement>('transport'),
  subscribeForm: $<HTMLFormElement>('subscribe-form'),
  patterns: $<HTMLInputElement>('patterns'),
  from: $<HTMLSelectElement>('from'),
  cursorForm: $<HTMLFormElement>('cursor-form'),
  cursor: $<HTMLInputElement>('cursor'),
  pause: $<HTMLButtonElement>('pause'),
  clear: $<HTMLButtonElement>('clear'),
  demo: $<HTMLButtonElement>('demo'),
  rows: $<HTMLTableSectionElement>('rows'),
  empty: $('empty'),
  detailCursor: $('detail-cursor'),
  copyCursor: $<HTMLButtonElement>('copy-cursor'),
  detailJson: $('detail-json'),
  subPatterns: $('sub-patterns'),
  position: $('position'),
};

const state = {
  client: undefined as HookstreamClient | undefined,
  sub: undefined as Subscription | undefined,
  patterns: [] as string[],
  /** Set while paused: where to resume. */
  pausedAt: undefined as string | undefined,
  status: 'connecting' as ClientStatus,
  counts: { events: 0, gaps: 0, reconnects: 0 },
  selected: undefined as HTMLTableRowElement | undefined,
  deliveries: new WeakMap<HTMLTableRowElement, Delivery>(),
};

// ---------------------------------------------------------------------------------------------------------
// Rendering

function showStatus(): void {
  const shown = state.pausedAt !== undefined && state.status === 'live' ? 'paused' : state.status;
  ui.status.textContent = shown;
  ui.status.dataset.status = shown;
  document.body.dataset.status = shown;
}

function showCounts(): void {
  ui.events.textContent = String(state.counts.events);
  ui.gaps.textContent = String(state.counts.gaps);
  ui.reconnects.textContent = String(state.counts.reconnects);
}

function showPosition(): void {
  ui.position.textContent = state.pausedAt ?? state.sub?.cursor ?? '–';
}

function addRow(row: HTMLTableRowElement): void {
  ui.rows.prepend(row);
  while (ui.rows.rows.length > MAX_ROWS) ui.rows.lastElementChild?.remove();
  ui.empty.hidden = true;
}

/**
 * The registry version named by an event's `dataschema` (`…/v1/schemas/<subject>/versions/<n>`). Only its path
 * is read: the URL is built from `server.publicUrl`, which need not be the origin this page was loaded from.
 */
function schemaOf(event: Delivery['event'] | undefined): { subject: string; version: number } | undefined {
  const ds = event?.dataschema;
  if (typeof ds !== 'string') return undefined;
  let path: string;
  try {
    path = new URL(ds).pathname;
  } catch {
    return undefined;
  }
  const m = /\/v1\/schemas\/([^/]+)\/versions\/([1-9]\d*)$/.exec(path);
  if (!m) return undefined;
  try {
    return { subject: decodeURIComponent(m[1]), version: Number(m[2]) };
  } catch {
    return undefined;
  }
}

function schemaCell(event: Delivery['event'] | undefined): HTMLTableCellElement {
  const td = cell('', 'schema');
  const ref = schemaOf(event);
  if (ref) {
    const a = document.createElement('a');
    a.href = schemaHref(ref.subject, ref.version);
    a.textContent = `v${ref.version}`;
    a.title = `${ref.subject}, version ${ref.version}`;
    td.append(a);
  }
  return td;
}

function addDelivery(d: Delivery): void {
  const row = document.createElement('tr');
  row.className = 'event';
  row.tabIndex = 0;
  row.dataset.seq = String(d.seq);
  row.dataset.subject = d.subject;
  row.append(
    cell(formatTime(d.event?.time), 'time'),
    cell(d.subject, 'subject'),
    cell(String(d.event?.type ?? ''), 'type'),
    schemaCell(d.event),
    cell(String(d.seq), 'num'),
  );
  state.deliveries.set(row, d);
  addRow(row);
}

/** A full-width line in the table for what is not an event: a gap, a new subscription. */
function addMarker(text: string, kind: 'gap' | 'info'): void {
  const row = document.createElement('tr');
  row.className = `marker ${kind}`;
  const td = document.createElement('td');
  td.colSpan = 5;
  td.textContent = text;
  row.append(td);
  addRow(row);
}

function select(row: HTMLTableRowElement | undefined): void {
  state.selected?.classList.remove('selected');
  state.selected = row;
  const d = row ? state.deliveries.get(row) : undefined;
  if (!row || !d) {
    ui.detailJson.textContent = 'Select an event to see its JSON.';
    ui.detailCursor.textContent = '';
    ui.copyCursor.hidden = true;
    return;
  }
  row.classList.add('selected');
  ui.detailCursor.textContent = d.cursor;
  ui.copyCursor.hidden = false;
  ui.detailJson.textContent = JSON.stringify(d, null, 2);
}

// ---------------------------------------------------------------------------------------------------------
// Client and subscription

function parsePatterns(text: string): string[] {
  return text.split(/[\s,]+/).filter(Boolean);
}

/** A new client with the typed token and transport; the previous one is closed. */
export function connect(): void {
  state.sub = undefined;
  state.client?.close();
  const token = ui.token.value.trim() || undefined;
  const transport = ui.transport.value as Transport;
  const client = createClient({ url: location.origin, token, transport });
  state.client = client;
  client.on('status', (status) => {
    if (client !== state.client) return;
    if (status === 'reconnecting' && state.status !== 'reconnecting') state.counts.reconnects++;
    state.status = status;
    showStatus();
    showCounts();
  });
  client.on('error', (err: HookstreamError) => {
    if (client === state.client) notify(`${err.code}: ${err.message}`, 'error');
  });
  state.status = client.status;
  showStatus();
}

/** Replaces the subscription: after `cursor`, or from `from` (the Start select's value). */
export function subscribe(start: { cursor?: string; from?: string }): void {
  const client = state.client;
  if (!client) return;
  state.sub?.unsubscribe();
  state.pausedAt = undefined;
  ui.pause.textContent = 'Pause';
  document.body.dataset.subscription = 'pending';
  const patterns = state.patterns;
  const sub = client.subscribe(patterns, onDelivery, { ...start, onGap });
  state.sub = sub;
  ui.subPatterns.textContent = patterns.join('  ');
  const from =
    start.cursor !== undefined
      ? `after cursor ${start.cursor}`
      : start.from === 'earliest'
        ? 'from the earliest stored event'
        : 'new events';
  addMarker(`Subscribed to ${patterns.join(', ')} — ${from}`, 'info');
  sub.ready.then(
    () => {
      if (state.sub !== sub) return;
      document.body.dataset.subscription = 'ready';
      showPosition();
    },
    (err: HookstreamError) => {
      if (state.sub !== sub) return;
      document.body.dataset.subscription = 'refused';
      addMarker(`Refused: ${err.code}`, 'gap');
    },
  );
  showStatus();
}

/** The Start select's value: `latest` or `earliest`. */
export function startFrom(): string {
  return ui.from.value;
}

function onDelivery(d: Delivery): void {
  state.counts.events++;
  addDelivery(d);
  showCounts();
  showPosition();
}

function onGap(notice: GapNotice): void {
  state.counts.gaps++;
  addMarker(`Gap: events after ${notice.from} are no longer stored; continuing from ${notice.resumeCursor}`, 'gap');
  showCounts();
}

function pauseOrResume(): void {
  if (state.pausedAt === undefined) {
    if (!state.sub) return;
    state.pausedAt = state.sub.cursor ?? '';
    state.sub.unsubscribe();
    state.sub = undefined;
    document.body.dataset.subscription = 'paused';
    ui.pause.textContent = 'Resume';
    addMarker(`Paused at ${state.pausedAt || 'the start'}`, 'info');
    showStatus();
    showPosition();
    return;
  }
  const at = state.pausedAt;
  subscribe(at ? { cursor: at } : { from: ui.from.value });
}

async function sendDemo(): Promise<void> {
  ui.demo.disabled = true;
  try {
    const res = await fetch('/console/demo-webhook', { method: 'POST' });
    const body = (await res.json().catch(() => ({}))) as Partial<WebhookAccepted & ErrorBody<string>>;
    if (res.status === 202) notify(`Sent: ${body.subject ?? ''} accepted as seq ${body.seq ?? '?'}`);
    else notify(`The demo webhook was refused: ${res.status} ${body.error ?? ''} ${body.message ?? ''}`, 'error');
  } catch (err) {
    notify(`The demo webhook could not be sent: ${String(err)}`, 'error');
  } finally {
    ui.demo.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Wiring

/** Up/down arrows move the selection over event rows (markers are skipped); Enter or space selects. */
function onRowKey(e: KeyboardEvent): void {
  const row = (e.target as HTMLElement).closest('tr.event');
  if (!(row instanceof HTMLTableRowElement)) return;
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    select(row);
  } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    let next = e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling;
    while (next && !next.classList.contains('event'))
      next = e.key === 'ArrowDown' ? next.nextElementSibling : next.previousElementSibling;
    if (next instanceof HTMLTableRowElement) {
      next.focus();
      select(next);
    }
  }
}

/**
 * Applies the page's query (`subject`, `transport`, `from`, `cursor`) over the defaults, wires the controls,
 * connects and subscribes.
 */
export function startEvents(
  params: URLSearchParams,
  defaults: { subjects: string[]; demoSource: string | null },
): void {
  const subjects = params.getAll('subject').flatMap(parsePatterns);
  state.patterns = subjects.length ? subjects : defaults.subjects;
  ui.patterns.value = state.patterns.join(' ');
  if (params.get('transport') === 'sse') ui.transport.value = 'sse';
  if (params.get('from') === 'earliest') ui.from.value = 'earliest';
  ui.demo.hidden = !defaults.demoSource;
  if (defaults.demoSource) ui.demo.title = `Signs a demo payload for source "${defaults.demoSource}" on the server`;

  ui.subscribeForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const patterns = parsePatterns(ui.patterns.value);
    if (!patterns.length) return notify('Enter at least one subject pattern, e.g. events.>', 'error');
    state.patterns = patterns;
    subscribe({ from: ui.from.value });
  });
  ui.cursorForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const cursor = ui.cursor.value.trim();
    if (!cursor) return notify('Paste a cursor first (every delivery has one; see the JSON pane).', 'error');
    subscribe({ cursor });
  });
  ui.pause.addEventListener('click', pauseOrResume);
  ui.clear.addEventListener('click', () => {
    ui.rows.replaceChildren();
    select(undefined);
    ui.empty.hidden = false;
  });
  ui.demo.addEventListener('click', () => void sendDemo());
  ui.copyCursor.addEventListener('click', () => {
    const text = ui.detailCursor.textContent ?? '';
    ui.cursor.value = text;
    navigator.clipboard?.writeText(text).catch(() => undefined);
    notify('Cursor copied (and put in the resume field).');
  });
  ui.rows.addEventListener('click', (e) => {
    const row = (e.target as HTMLElement).closest('tr.event');
    if (row instanceof HTMLTableRowElement) select(row);
  });
  ui.rows.addEventListener('keydown', onRowKey);

  connect();
  const cursor = params.get('cursor');
  subscribe(cursor ? { cursor } : { from: ui.from.value });
}
