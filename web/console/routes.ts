/**
 * The console's hash routes: `#/events` (the default), `#/overview`, `#/schemas[/<subject>[/versions/<n>]]`
 * and `#/endpoints[/<id>]`. Links are built here so every view spells them the same way.
 */
import { decodeSegment } from './dom.js';

export type Route =
  | { view: 'events' }
  | { view: 'overview' }
  | { view: 'schemas'; subject?: string; version?: number }
  | { view: 'endpoints'; id?: string };

export type ViewName = Route['view'];

export function parseRoute(hash: string): Route {
  const schemas = /^#\/schemas(?:\/([^/]+)(?:\/versions\/([1-9]\d*))?)?\/?$/.exec(hash);
  if (schemas) {
    return {
      view: 'schemas',
      subject: decodeSegment(schemas[1]),
      version: schemas[2] === undefined ? undefined : Number(schemas[2]),
    };
  }
  const endpoints = /^#\/endpoints(?:\/([^/]+))?\/?$/.exec(hash);
  if (endpoints) return { view: 'endpoints', id: decodeSegment(endpoints[1]) };
  if (/^#\/overview\/?$/.test(hash)) return { view: 'overview' };
  return { view: 'events' };
}

/** The Schemas view's route; subjects are plain tokens, encoded anyway since they come off the wire. */
export function schemaHref(subject?: string, version?: number): string {
  if (subject === undefined) return '#/schemas';
  const base = `#/schemas/${encodeURIComponent(subject)}`;
  return version === undefined ? base : `${base}/versions/${version}`;
}

export function endpointHref(id?: string): string {
  return id === undefined ? '#/endpoints' : `#/endpoints/${encodeURIComponent(id)}`;
}
