/**
 * The live console (`GET /console`): a browser script, bundled by scripts/build-client.mjs into one console.js.
 * It imports the SDK from the gateway's own `/sdk/hookstream.js` (the build rewrites `@hookstream/client`), so
 * the page exercises exactly what users load. No framework: tables, a JSON pane, a few forms and SVG charts.
 *
 * This file loads the settings and routes between the views; each view lives in its own module:
 * events-view.ts (the connection and its deliveries), and, read with the typed API key, overview-view.ts (live
 * stats), schemas-view.ts and endpoints-view.ts.
 */
import { $ } from './dom.js';
import { endpointsView } from './endpoints-view.js';
import { connect, startEvents, startFrom, subscribe } from './events-view.js';
import { overviewView } from './overview-view.js';
import { parseRoute, type ViewName } from './routes.js';
import { schemasView } from './schemas-view.js';

interface ConsoleSettings {
  subjectPrefix: string;
  defaultSubjects: string[];
  demoSource: string | null;
}

const eventsView = { element: $('events-view'), tab: $<HTMLAnchorElement>('tab-events') };
const views = { events: eventsView, overview: overviewView, schemas: schemasView, endpoints: endpointsView };

/** Shows the view the hash names, and (re)reads it when it reads from the API. */
function route(): void {
  const r = parseRoute(location.hash);
  for (const [name, view] of Object.entries(views) as [ViewName, (typeof views)[ViewName]][]) {
    view.element.hidden = name !== r.view;
    if (name === r.view) view.tab.setAttribute('aria-current', 'page');
    else view.tab.removeAttribute('aria-current');
  }
  document.body.dataset.view = r.view;
  if (r.view !== 'endpoints') endpointsView.close();
  if (r.view !== 'overview') overviewView.close();
  if (r.view !== 'schemas') schemasView.close();
  if (r.view === 'schemas') schemasView.open(r.subject, r.version);
  else if (r.view === 'endpoints') endpointsView.open(r.id);
  else if (r.view === 'overview') overviewView.open();
}

/** A view that reads with the typed key is open: a new key (or a reconnect) re-reads it. */
function readsWithKey(): boolean {
  return document.body.dataset.view !== 'events';
}

async function loadSettings(): Promise<ConsoleSettings> {
  const defaults: ConsoleSettings = { subjectPrefix: 'events', defaultSubjects: ['events.>'], demoSource: null };
  try {
    const res = await fetch('/console/config.json', { cache: 'no-store' });
    if (res.ok) return (await res.json()) as ConsoleSettings;
  } catch {
    // keep the defaults: the console still works without its settings
  }
  return defaults;
}

async function main(): Promise<void> {
  const settings = await loadSettings();
  $<HTMLFormElement>('connect-form').addEventListener('submit', (e) => {
    e.preventDefault();
    connect();
    subscribe({ from: startFrom() });
    if (readsWithKey()) route();
  });
  // A key typed while a view that reads with it is open is used at once.
  $<HTMLInputElement>('token').addEventListener('change', () => {
    if (readsWithKey()) route();
  });
  schemasView.wire(route);
  endpointsView.wire(route);
  window.addEventListener('hashchange', route);
  route();
  startEvents(new URLSearchParams(location.search), {
    subjects: settings.defaultSubjects,
    demoSource: settings.demoSource,
  });
}

void main();
