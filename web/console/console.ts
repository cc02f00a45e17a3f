/**
 * The live console (`GET /console`): a browser script, bundled by scripts/build-client.mjs. It imports the SDK
 * from the gateway's own `/sdk/hookstream.js` (the build rewrites the import below), so the page exercises
 * exactly what users load. No framework: a table, a JSON pane and a few forms.
 */
import {
  createClient,
  type ClientStatus,
  type Delivery,
  type GapNotice,
  type HookstreamClient,
  type HookstreamError,
  type Subscription,
  type Transport,
} from '@hookstream/client';
import type { ErrorBody, WebhookAccepted } from '@hookstream/client';

interface ConsoleSettings {
  subjectPrefix: string;
  defaultSubjects: string[];
  demoSource: string | null;
}

const MAX_ROWS = 500;

function $<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`console: #${id} is missing`);
  return el as T;
}

const ui = {
  status: $('status'),
  events: $('count-events'),
  gaps: $('count-gaps'),
  reconnects: $('count-reconnects'),
  connectForm: $<HTMLFormElement>('connect-form'),
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
  notice: $('notice'),
  rows: $<HTMLTableSectionElement>('rows'),
  empty: $('empty'),
  detailCursor: $('detail-cursor'),
  copyCursor: $<HTMLButtonElement>('copy-cursor'),
  detailJson: $('detail-json'),
  subPatterns: $('sub-patterns'),
  position: $('position'),
  tabEvents: $<HTMLAnchorElement>('tab-events'),
  tabSchemas: $<HTMLAnchorElement>('tab-schemas'),
  eventsView: $('events-view'),
  schemasView: $('schemas-view'),
  schemasMessage: $('schemas-message'),
  schemasRefresh: $<HTMLButtonElement>('schemas-refresh'),
  schemaSubjects: $<HTMLTableSectionElement>('schema-subjects'),
  schemaVersions: $<HTMLUListElement>('schema-versions'),
  schemaTitle: $('schema-title'),
  schemaJson: $('schema-json'),
  tabEndpoints: $<HTMLAnchorElement>('tab-endpoints'),
  endpointsView: $('endpoints-view'),
  endpointsMessage: $('endpoints-message'),
  endpointsRefresh: $<HTMLButtonElement>('endpoints-refresh'),
  endpointRows: $<HTMLTableSectionElement>('endpoint-rows'),
  endpointTitle: $('endpoint-title'),
  attemptRows: $<HTMLTableSectionElement>('attempt-rows'),
  deadRows: $<HTMLTableSectionElement>('dead-rows'),
  redeliver: $<HTMLButtonElement>('redeliver'),
  redeliverResult: $('redeliver-result'),
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
  settings: { subjectPrefix: 'events', defaultSubjects: ['events.>'], demoSource: null } as ConsoleSettings,
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

let noticeTimer: ReturnType<typeof setTimeout> | undefined;
function notify(text: string, kind: 'info' | 'error' = 'info'): void {
  ui.notice.textContent = text;
  ui.notice.dataset.kind = kind;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  if (kind === 'info') noticeTimer = setTimeout(() => (ui.notice.hidden = true), 6000);
}

function formatTime(iso: unknown): string {
  const d = typeof iso === 'string' ? new Date(iso) : new Date();
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function cell(text: string, className?: string): HTMLTableCellElement {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function addRow(row: HTMLTableRowElement): void {
  ui.rows.prepend(row);
  while (ui.rows.rows.length > MAX_ROWS) ui.rows.lastElementChild?.remove();
  ui.empty.hidden = true;
}

/** The hash route of the Schemas view; subjects are plain tokens, encoded anyway since they come off the wire. */
function schemaHref(subject?: string, version?: number): string {
  if (subject === undefined) return '#/schemas';
  const base = `#/schemas/${encodeURIComponent(subject)}`;
  return version === undefined ? base : `${base}/versions/${version}`;
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

function connect(): void {
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

function subscribe(start: { cursor?: string; from?: string }): void {
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
// Schemas view: reads the registry with the API key typed in Token (the registry's reads need one)

interface SubjectSummary {
  subject: string;
  latestVersion: number;
  compatibility: string;
  mode: 'enforce' | 'warn' | null;
  managed: string;
}
interface SubjectDetail {
  subject: string;
  versions: number[];
}
interface SchemaVersion {
  subject: string;
  version: number;
  schema: unknown;
  createdAt: string;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A call to the gateway's own HTTP API with the typed key; a refusal becomes an ApiError with its code. */
async function apiCall<T>(path: string, key: string, post?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (post !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method: post === undefined ? 'GET' : 'POST',
    headers,
    body: post === undefined ? undefined : JSON.stringify(post),
    cache: 'no-store',
  });
  const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  if (!res.ok) throw new ApiError(res.status, `${body.error ?? res.status}: ${body.message ?? res.statusText}`);
  return body as T;
}

const registryGet = <T>(path: string, key: string): Promise<T> => apiCall<T>(path, key);

/** Answers that arrive after the user moved on are dropped: only the latest load renders. */
let schemaLoad = 0;

function schemasState(state: 'loading' | 'ready' | 'needs-key' | 'error', message = ''): void {
  document.body.dataset.schemas = state;
  ui.schemasMessage.textContent = message;
  ui.schemasMessage.dataset.kind = state === 'error' || state === 'needs-key' ? 'error' : 'info';
}

function renderSubjects(subjects: SubjectSummary[], selected: string | undefined): void {
  ui.schemaSubjects.replaceChildren(
    ...subjects.map((s) => {
      const row = document.createElement('tr');
      row.className = s.subject === selected ? 'schema-subject selected' : 'schema-subject';
      row.dataset.subject = s.subject;
      const name = cell('', 'subject');
      const a = document.createElement('a');
      a.href = schemaHref(s.subject);
      a.textContent = s.subject;
      name.append(a);
      row.append(
        name,
        cell(`v${s.latestVersion}`, 'num latest'),
        cell(s.compatibility, 'compatibility'),
        cell(s.mode ?? 'default', 'mode'),
        cell(s.managed, 'managed'),
      );
      if (s.mode === null) row.cells[3].title = 'enforce on /v1/events, warn on webhooks';
      return row;
    }),
  );
}

function renderVersions(detail: SubjectDetail | undefined, shown: number | undefined): void {
  ui.schemaVersions.replaceChildren(
    ...(detail?.versions ?? [])
      .slice()
      .reverse()
      .map((v) => {
        const li = document.createElement('li');
        li.dataset.version = String(v);
        if (v === shown) li.className = 'selected';
        const a = document.createElement('a');
        a.href = schemaHref(detail?.subject, v);
        a.textContent = `v${v}`;
        li.append(a);
        return li;
      }),
  );
}

function renderSchema(version: SchemaVersion | undefined): void {
  if (!version) {
    ui.schemaTitle.textContent = 'Schema';
    ui.schemaJson.textContent = 'Select a subject to see its schema.';
    return;
  }
  ui.schemaTitle.textContent = `${version.subject} v${version.version} · registered ${version.createdAt}`;
  ui.schemaJson.textContent = JSON.stringify(version.schema, null, 2);
}

async function loadSchemas(subject: string | undefined, version: number | undefined): Promise<void> {
  const load = ++schemaLoad;
  const key = ui.token.value.trim();
  if (!key) {
    renderSubjects([], undefined);
    renderVersions(undefined, undefined);
    renderSchema(undefined);
    schemasState(
      'needs-key',
      'Reading schemas needs an API key: type one in Token above (any configured key may read).',
    );
    return;
  }
  schemasState('loading', 'Loading…');
  try {
    const at = subject === undefined ? '' : `/v1/schemas/${encodeURIComponent(subject)}`;
    const [list, detail, shown] = await Promise.all([
      registryGet<{ subjects: SubjectSummary[] }>('/v1/schemas', key),
      subject === undefined ? undefined : registryGet<SubjectDetail>(at, key),
      subject === undefined ? undefined : registryGet<SchemaVersion>(`${at}/versions/${version ?? 'latest'}`, key),
    ]);
    if (load !== schemaLoad) return;
    const subjects = [...list.subjects].sort((a, b) => a.subject.localeCompare(b.subject));
    renderSubjects(subjects, subject);
    renderVersions(detail, shown?.version);
    renderSchema(shown);
    schemasState('ready', subjects.length ? '' : 'No schemas are registered or declared yet.');
  } catch (err) {
    if (load !== schemaLoad) return;
    const text =
      err instanceof ApiError && err.status === 401
        ? `The token is not an accepted API key (${err.message}). Reading schemas needs an API key.`
        : `The registry answered ${err instanceof Error ? err.message : String(err)}`;
    schemasState('error', text);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Endpoints view: outbound webhook endpoints, read with the typed API key (`endpoints: true` or `admin: true`)

interface EndpointSummary {
  id: string;
  url: string;
  status: 'active' | 'disabled';
  disabledReason: string | null;
  state: { pending: number; dead: number; lastSuccessAt: string | null };
}
interface AttemptView {
  eventId: string;
  attempt: number;
  at: string;
  durationMs: number;
  status: number | null;
  error: string | null;
}
interface DeadView {
  eventId: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  deadAt: string;
}

/** While the view is open it re-reads this often, so retries and redeliveries show without a click. */
const ENDPOINTS_REFRESH_MS = 2000;
let endpointLoad = 0;
let endpointTimer: ReturnType<typeof setTimeout> | undefined;
/** The dead events shown for the selected endpoint: what Redeliver sends. */
let shownDead: { endpoint: string; eventIds: string[] } | undefined;

function endpointHref(id?: string): string {
  return id === undefined ? '#/endpoints' : `#/endpoints/${encodeURIComponent(id)}`;
}

function endpointsState(state: 'loading' | 'ready' | 'needs-key' | 'error', message?: string): void {
  document.body.dataset.endpoints = state;
  if (message === undefined) return;
  ui.endpointsMessage.textContent = message;
  ui.endpointsMessage.dataset.kind = state === 'error' || state === 'needs-key' ? 'error' : 'info';
}

function renderEndpoints(endpoints: EndpointSummary[], selected: string | undefined): void {
  ui.endpointRows.replaceChildren(
    ...endpoints.map((e) => {
      const row = document.createElement('tr');
      row.className = e.id === selected ? 'endpoint selected' : 'endpoint';
      row.dataset.id = e.id;
      row.dataset.status = e.status;
      const name = cell('', 'id');
      const a = document.createElement('a');
      a.href = endpointHref(e.id);
      a.textContent = e.id;
      name.append(a);
      const url = cell(e.url, 'url');
      url.title = e.url;
      row.append(
        name,
        url,
        cell(e.disabledReason ? `${e.status} (${e.disabledReason})` : e.status, 'status'),
        cell(String(e.state.pending), 'num pending'),
        cell(String(e.state.dead), 'num dead'),
        cell(e.state.lastSuccessAt ?? '–', 'time last-success'),
      );
      return row;
    }),
  );
}

function renderAttempts(attempts: AttemptView[]): void {
  ui.attemptRows.replaceChildren(
    ...attempts.map((a) => {
      const row = document.createElement('tr');
      row.className = 'attempt';
      row.dataset.eventId = a.eventId;
      row.dataset.status = a.status === null ? '' : String(a.status);
      row.append(
        cell(a.at, 'time'),
        cell(a.eventId, 'event-id'),
        cell(String(a.attempt), 'num attempt'),
        cell(a.status === null ? '–' : String(a.status), 'num status'),
        cell(a.error ?? '', 'error'),
        cell(String(a.durationMs), 'num duration'),
      );
      return row;
    }),
  );
}

function renderDead(dead: DeadView[]): void {
  ui.deadRows.replaceChildren(
    ...dead.map((d) => {
      const row = document.createElement('tr');
      row.className = 'dead-event';
      row.dataset.eventId = d.eventId;
      row.append(
        cell(d.eventId, 'event-id'),
        cell(String(d.attempts), 'num attempts'),
        cell(d.lastStatus === null ? '–' : String(d.lastStatus), 'num status'),
        cell(d.lastError ?? '', 'error'),
        cell(d.deadAt, 'time'),
      );
      return row;
    }),
  );
  ui.redeliver.disabled = dead.length === 0;
}

function clearEndpointDetail(title: string): void {
  shownDead = undefined;
  ui.redeliverResult.textContent = '';
  ui.endpointTitle.textContent = title;
  renderAttempts([]);
  renderDead([]);
}

async function loadEndpoints(id: string | undefined): Promise<void> {
  const load = ++endpointLoad;
  clearTimeout(endpointTimer);
  const key = ui.token.value.trim();
  if (!key) {
    renderEndpoints([], undefined);
    clearEndpointDetail('Endpoint');
    endpointsState(
      'needs-key',
      'Reading endpoints needs an API key with endpoints or admin rights: type it in Token above.',
    );
    return;
  }
  // A periodic re-read keeps the rows and the message on screen instead of flashing "Loading…".
  if (document.body.dataset.endpoints === 'ready') endpointsState('loading');
  else endpointsState('loading', 'Loading…');
  try {
    const at = id === undefined ? '' : `/v1/endpoints/${encodeURIComponent(id)}`;
    const [list, attempts, dead] = await Promise.all([
      apiCall<{ endpoints: EndpointSummary[] }>('/v1/endpoints', key),
      id === undefined ? undefined : apiCall<{ attempts: AttemptView[] }>(`${at}/attempts?limit=50`, key),
      id === undefined ? undefined : apiCall<{ events: DeadView[] }>(`${at}/dead?limit=100`, key),
    ]);
    if (load !== endpointLoad) return;
    const endpoints = [...list.endpoints].sort((a, b) => a.id.localeCompare(b.id));
    renderEndpoints(endpoints, id);
    if (id === undefined || !attempts || !dead) clearEndpointDetail('Select an endpoint to see its attempts.');
    else {
      if (shownDead?.endpoint !== id) ui.redeliverResult.textContent = '';
      ui.endpointTitle.textContent = `${id} · recent attempts, newest first`;
      renderAttempts(attempts.attempts);
      renderDead(dead.events);
      shownDead = { endpoint: id, eventIds: dead.events.map((d) => d.eventId) };
    }
    endpointsState('ready', endpoints.length ? '' : 'This key sees no endpoints yet.');
    endpointTimer = setTimeout(() => {
      if (!ui.endpointsView.hidden && load === endpointLoad) void loadEndpoints(id);
    }, ENDPOINTS_REFRESH_MS);
  } catch (err) {
    if (load !== endpointLoad) return;
    const text =
      err instanceof ApiError && err.status === 401
        ? `The token is not an accepted API key (${err.message}).`
        : `The gateway answered ${err instanceof Error ? err.message : String(err)}`;
    endpointsState('error', text);
  }
}

/** Sends the dead events shown for the selected endpoint again; they keep their webhook-id. */
async function redeliverDead(): Promise<void> {
  const key = ui.token.value.trim();
  const target = shownDead;
  if (!key || !target || !target.eventIds.length) return;
  ui.redeliver.disabled = true;
  try {
    const at = `/v1/endpoints/${encodeURIComponent(target.endpoint)}/redeliver`;
    const res = await apiCall<{ queued: number }>(at, key, { eventIds: target.eventIds });
    ui.redeliverResult.textContent = `queued ${res.queued}`;
    document.body.dataset.redeliver = 'queued';
  } catch (err) {
    ui.redeliverResult.textContent = `refused: ${err instanceof Error ? err.message : String(err)}`;
    document.body.dataset.redeliver = 'refused';
  }
  route();
}

/** `#/schemas[/<subject>[/versions/<n>]]` shows the registry, `#/endpoints[/<id>]` the endpoints; else the events. */
function route(): void {
  const m = /^#\/schemas(?:\/([^/]+)(?:\/versions\/([1-9]\d*))?)?\/?$/.exec(location.hash);
  const ep = /^#\/endpoints(?:\/([^/]+))?\/?$/.exec(location.hash);
  const view = m ? 'schemas' : ep ? 'endpoints' : 'events';
  ui.eventsView.hidden = view !== 'events';
  ui.schemasView.hidden = view !== 'schemas';
  ui.endpointsView.hidden = view !== 'endpoints';
  document.body.dataset.view = view;
  const tabs = { events: ui.tabEvents, schemas: ui.tabSchemas, endpoints: ui.tabEndpoints };
  for (const [name, tab] of Object.entries(tabs)) {
    if (name === view) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  if (view !== 'endpoints') clearTimeout(endpointTimer);
  if (ep) {
    void loadEndpoints(decodeSegment(ep[1]));
    return;
  }
  if (!m) return;
  void loadSchemas(decodeSegment(m[1]), m[2] === undefined ? undefined : Number(m[2]));
}

function decodeSegment(segment: string | undefined): string | undefined {
  try {
    return segment === undefined ? undefined : decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Wiring

async function loadSettings(): Promise<void> {
  try {
    const res = await fetch('/console/config.json', { cache: 'no-store' });
    if (res.ok) state.settings = (await res.json()) as ConsoleSettings;
  } catch {
    // keep the defaults: the console still works without its settings
  }
}

async function main(): Promise<void> {
  await loadSettings();
  const params = new URLSearchParams(location.search);
  const subjects = params.getAll('subject').flatMap(parsePatterns);
  state.patterns = subjects.length ? subjects : state.settings.defaultSubjects;
  ui.patterns.value = state.patterns.join(' ');
  if (params.get('transport') === 'sse') ui.transport.value = 'sse';
  const from = params.get('from');
  if (from === 'earliest') ui.from.value = 'earliest';
  ui.demo.hidden = !state.settings.demoSource;
  if (state.settings.demoSource)
    ui.demo.title = `Signs a demo payload for source "${state.settings.demoSource}" on the server`;

  ui.connectForm.addEventListener('submit', (e) => {
    e.preventDefault();
    connect();
    subscribe({ from: ui.from.value });
    if (!ui.schemasView.hidden || !ui.endpointsView.hidden) route();
  });
  // A key typed while the Schemas or Endpoints view is open is used at once.
  ui.token.addEventListener('change', () => {
    if (!ui.schemasView.hidden || !ui.endpointsView.hidden) route();
  });
  ui.schemasRefresh.addEventListener('click', route);
  ui.endpointsRefresh.addEventListener('click', route);
  ui.redeliver.addEventListener('click', () => void redeliverDead());
  window.addEventListener('hashchange', route);
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
  ui.rows.addEventListener('keydown', (e) => {
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
  });

  route();
  connect();
  const cursor = params.get('cursor');
  subscribe(cursor ? { cursor } : { from: ui.from.value });
}

void main();
