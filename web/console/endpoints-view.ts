/**
 * The Endpoints view (`#/endpoints[/<id>]`): outbound webhook endpoints, one endpoint's recent attempts and dead
 * events, and Redeliver, read with the typed API key (`endpoints: true` or `admin: true`). While open it re-reads
 * every few seconds, so retries and redeliveries show without a click.
 */
import { apiCall, refusalText, typedKey } from './api.js';
import { $, cell } from './dom.js';
import { endpointHref } from './routes.js';

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

const ui = {
  view: $('endpoints-view'),
  tab: $<HTMLAnchorElement>('tab-endpoints'),
  message: $('endpoints-message'),
  refresh: $<HTMLButtonElement>('endpoints-refresh'),
  endpointRows: $<HTMLTableSectionElement>('endpoint-rows'),
  title: $('endpoint-title'),
  attemptRows: $<HTMLTableSectionElement>('attempt-rows'),
  deadRows: $<HTMLTableSectionElement>('dead-rows'),
  redeliver: $<HTMLButtonElement>('redeliver'),
  redeliverResult: $('redeliver-result'),
};

const ENDPOINTS_REFRESH_MS = 2000;
let endpointLoad = 0;
let endpointTimer: ReturnType<typeof setTimeout> | undefined;
/** The dead events shown for the selected endpoint: what Redeliver sends. */
let shownDead: { endpoint: string; eventIds: string[] } | undefined;
/** Re-reads the current route after a redelivery (set by the router). */
let reroute: () => void = () => undefined;

function endpointsState(state: 'loading' | 'ready' | 'needs-key' | 'error', message?: string): void {
  document.body.dataset.endpoints = state;
  if (message === undefined) return;
  ui.message.textContent = message;
  ui.message.dataset.kind = state === 'error' || state === 'needs-key' ? 'error' : 'info';
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
  ui.title.textContent = title;
  renderAttempts([]);
  renderDead([]);
}

async function loadEndpoints(id: string | undefined): Promise<void> {
  const load = ++endpointLoad;
  clearTimeout(endpointTimer);
  const key = typedKey();
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
      ui.title.textContent = `${id} · recent attempts, newest first`;
      renderAttempts(attempts.attempts);
      renderDead(dead.events);
      shownDead = { endpoint: id, eventIds: dead.events.map((d) => d.eventId) };
    }
    endpointsState('ready', endpoints.length ? '' : 'This key sees no endpoints yet.');
    endpointTimer = setTimeout(() => {
      if (!ui.view.hidden && load === endpointLoad) void loadEndpoints(id);
    }, ENDPOINTS_REFRESH_MS);
  } catch (err) {
    if (load !== endpointLoad) return;
    endpointsState('error', refusalText(err));
  }
}

/** Sends the dead events shown for the selected endpoint again; they keep their webhook-id. */
async function redeliverDead(): Promise<void> {
  const key = typedKey();
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
  reroute();
}

/** The view as the router drives it. */
export const endpointsView = {
  element: ui.view,
  tab: ui.tab,
  /** `refresh` re-reads the current route: the Refresh button, and after a redelivery. */
  wire(refresh: () => void): void {
    reroute = refresh;
    ui.refresh.addEventListener('click', refresh);
    ui.redeliver.addEventListener('click', () => void redeliverDead());
  },
  open(id: string | undefined): void {
    void loadEndpoints(id);
  },
  close(): void {
    clearTimeout(endpointTimer);
  },
};
