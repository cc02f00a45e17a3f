/**
 * The Schemas view (`#/schemas[/<subject>[/versions/<n>]]`): the registry's subjects, one subject's versions and
 * one version's JSON Schema, read with the API key typed in Token (the registry's reads need one; any key may read).
 */
import { apiCall, refusalText, typedKey } from './api.js';
import { $, cell } from './dom.js';
import { schemaHref } from './routes.js';

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

const ui = {
  view: $('schemas-view'),
  tab: $<HTMLAnchorElement>('tab-schemas'),
  message: $('schemas-message'),
  refresh: $<HTMLButtonElement>('schemas-refresh'),
  subjects: $<HTMLTableSectionElement>('schema-subjects'),
  versions: $<HTMLUListElement>('schema-versions'),
  title: $('schema-title'),
  json: $('schema-json'),
};

/** Answers that arrive after the user moved on are dropped: only the latest load renders. */
let schemaLoad = 0;

function schemasState(state: 'loading' | 'ready' | 'needs-key' | 'error', message = ''): void {
  document.body.dataset.schemas = state;
  ui.message.textContent = message;
  ui.message.dataset.kind = state === 'error' || state === 'needs-key' ? 'error' : 'info';
}

function renderSubjects(subjects: SubjectSummary[], selected: string | undefined): void {
  ui.subjects.replaceChildren(
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
  ui.versions.replaceChildren(
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
    ui.title.textContent = 'Schema';
    ui.json.textContent = 'Select a subject to see its schema.';
    return;
  }
  ui.title.textContent = `${version.subject} v${version.version} · registered ${version.createdAt}`;
  ui.json.textContent = JSON.stringify(version.schema, null, 2);
}

async function loadSchemas(subject: string | undefined, version: number | undefined): Promise<void> {
  const load = ++schemaLoad;
  const key = typedKey();
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
      apiCall<{ subjects: SubjectSummary[] }>('/v1/schemas', key),
      subject === undefined ? undefined : apiCall<SubjectDetail>(at, key),
      subject === undefined ? undefined : apiCall<SchemaVersion>(`${at}/versions/${version ?? 'latest'}`, key),
    ]);
    if (load !== schemaLoad) return;
    const subjects = [...list.subjects].sort((a, b) => a.subject.localeCompare(b.subject));
    renderSubjects(subjects, subject);
    renderVersions(detail, shown?.version);
    renderSchema(shown);
    schemasState('ready', subjects.length ? '' : 'No schemas are registered or declared yet.');
  } catch (err) {
    if (load !== schemaLoad) return;
    schemasState('error', refusalText(err, { hint: 'Reading schemas needs an API key.', who: 'The registry' }));
  }
}

/** The view as the router drives it. */
export const schemasView = {
  element: ui.view,
  tab: ui.tab,
  /** `refresh` is called back by the Refresh button (the router re-reads the current route). */
  wire(refresh: () => void): void {
    ui.refresh.addEventListener('click', refresh);
  },
  open(subject: string | undefined, version: number | undefined): void {
    void loadSchemas(subject, version);
  },
  close(): void {
    schemaLoad++;
  },
};
