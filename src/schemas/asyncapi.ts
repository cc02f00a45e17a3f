/**
 * The AsyncAPI 3.0 document of this gateway: its servers (HTTP ingest, Socket.IO, SSE), a channel per configured
 * source and per subject with a schema (the latest version as the event's `data`), the operations that receive
 * events (webhooks, POST /v1/events) and those that send them (Socket.IO, SSE, outbound endpoints). Pure.
 */

export interface AsyncApiInput {
  title: string;
  version: string;
  publicUrl: string;
  subjectPrefix: string;
  sources: { name: string; verifier: string }[];
  subjects: { subject: string; version: number; schema: Record<string, unknown>; dataschema: string }[];
}

type Obj = Record<string, unknown>;

/** Map keys AsyncAPI accepts (`[A-Za-z0-9_.-]`… kept to letters, digits, `-` and `_`), distinct for distinct subjects. */
export function componentKey(name: string): string {
  return name.replace(/[^A-Za-z0-9-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * A registered schema placed at `#/components/schemas/<key>`: its local references (`#/$defs/x`, `#`) are
 * rewritten to point inside that place, so they still resolve within the document.
 */
export function relocateRefs(schema: unknown, base: string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => relocateRefs(s, base));
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Obj = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#')) out[k] = `${base}${v.slice(1)}`;
    else if (k === '$id' || k === '$schema')
      continue; // a nested base URI or dialect would re-root the references
    else out[k] = relocateRefs(v, base);
  }
  return out;
}

const CLOUD_EVENT_ATTRIBUTES: Obj = {
  specversion: { type: 'string', const: '1.0' },
  id: { type: 'string' },
  source: { type: 'string', description: '/webhooks/<source>, or /v1/events/<api key id>' },
  type: { type: 'string' },
  time: { type: 'string', format: 'date-time' },
  datacontenttype: { type: 'string' },
  dataschema: {
    type: 'string',
    format: 'uri',
    description:
      'The schema version the data was validated against; absent when it was not (no schema, or it failed in warn mode)',
  },
  data_base64: { type: 'string', description: 'A body that is not JSON, byte-exact' },
  hookstreamsource: { type: 'string', description: 'The source name or API key id that sent the event' },
};

function cloudEvent(data: Obj, description: string): Obj {
  return {
    type: 'object',
    description,
    required: ['specversion', 'id', 'source', 'type', 'time'],
    properties: { ...CLOUD_EVENT_ATTRIBUTES, data },
  };
}

function delivery(event: Obj): Obj {
  return {
    type: 'object',
    required: ['cursor', 'seq', 'subject', 'event'],
    properties: {
      cursor: { type: 'string', description: 'Opaque position: resume after this event' },
      seq: { type: 'integer', minimum: 1 },
      subject: { type: 'string' },
      event,
    },
  };
}

export function buildAsyncApi(input: AsyncApiInput): Obj {
  const url = new URL(input.publicUrl);
  const secure = url.protocol === 'https:';
  const basePath = url.pathname.replace(/\/+$/, '');
  const server = (protocol: string, pathname: string, description: string): Obj => ({
    host: url.host,
    protocol,
    pathname: `${basePath}${pathname}` || '/',
    description,
  });

  const schemas: Obj = {};
  const messages: Obj = {};
  const channels: Obj = {};
  const operations: Obj = {};
  const subjectMessageRefs: Obj = {};
  const deliveryMessageRefs: Obj = {};
  const publishMessageRefs: Obj = {};

  for (const s of input.subjects) {
    const key = componentKey(s.subject);
    schemas[key] = relocateRefs(s.schema, `#/components/schemas/${key}`);
    const data = { $ref: `#/components/schemas/${key}` };
    const event = cloudEvent(data, `A stored ${s.subject} event; data matches version ${s.version}`);
    messages[key] = {
      name: s.subject,
      title: `${s.subject} (schema version ${s.version})`,
      contentType: 'application/cloudevents+json',
      payload: event,
      externalDocs: { url: s.dataschema, description: 'This schema version in the registry' },
    };
    messages[`${key}-delivery`] = {
      name: `${s.subject} delivery`,
      contentType: 'application/json',
      payload: delivery(event),
    };
    messages[`${key}-publish`] = {
      name: `${s.subject} publish`,
      contentType: 'application/json',
      payload: {
        type: 'object',
        required: ['subject', 'data'],
        properties: {
          subject: { type: 'string', const: s.subject },
          id: { type: 'string', description: 'Idempotency key; generated when absent' },
          type: { type: 'string' },
          schemaVersion: { description: 'A registered version number, or "latest" (the default)' },
          data,
        },
      },
    };
    subjectMessageRefs[key] = { $ref: `#/components/messages/${key}` };
    deliveryMessageRefs[`${key}-delivery`] = { $ref: `#/components/messages/${key}-delivery` };
    publishMessageRefs[`${key}-publish`] = { $ref: `#/components/messages/${key}-publish` };
    channels[`subject-${key}`] = {
      address: s.subject,
      title: s.subject,
      description: `Events on ${s.subject}, valid under version ${s.version} of its schema`,
      messages: { [key]: { $ref: `#/components/messages/${key}` } },
    };
  }

  messages.anyEvent = {
    name: 'event',
    contentType: 'application/cloudevents+json',
    payload: cloudEvent({ description: 'The event data as sent' }, 'A stored event of any subject'),
  };
  messages.anyDelivery = {
    name: 'delivery',
    contentType: 'application/json',
    payload: delivery({ $ref: '#/components/messages/anyEvent/payload' }),
  };

  for (const source of input.sources) {
    const key = `webhook-${componentKey(source.name)}`;
    channels[key] = {
      address: `/webhooks/${source.name}`,
      title: `Webhooks from ${source.name}`,
      description: `Signed deliveries verified with the ${source.verifier} scheme, stored on ${input.subjectPrefix}.${source.name}.<type>`,
      servers: [{ $ref: '#/servers/http' }],
      messages: { webhook: { name: 'webhook', payload: { description: "The provider's body, as signed" } } },
    };
    operations[`receive-${key}`] = {
      action: 'receive',
      title: `Receive ${source.name} webhooks`,
      channel: { $ref: `#/channels/${key}` },
    };
  }

  channels.publish = {
    address: '/v1/events',
    title: 'First-party publish',
    description: 'POST one event or an array of up to 1000, with an API key whose publish grant holds each subject',
    servers: [{ $ref: '#/servers/http' }],
    messages: {
      ...publishMessageRefs,
      anyPublish: {
        name: 'publish',
        payload: {
          type: 'object',
          required: ['subject', 'data'],
          properties: { subject: { type: 'string' }, id: { type: 'string' }, type: { type: 'string' }, data: {} },
        },
      },
    },
  };
  operations.receivePublish = {
    action: 'receive',
    title: 'Receive POST /v1/events',
    channel: { $ref: '#/channels/publish' },
  };

  channels.deliveries = {
    address: `${input.subjectPrefix}.>`,
    title: 'Deliveries to subscribers',
    description: 'Every stored event matching a subscription, in order, each with its cursor',
    servers: [{ $ref: '#/servers/socketio' }, { $ref: '#/servers/sse' }],
    messages: { ...deliveryMessageRefs, anyDelivery: { $ref: '#/components/messages/anyDelivery' } },
  };
  channels.endpoints = {
    address: null, // each endpoint's own URL
    title: 'Outbound endpoints',
    description: 'Each registered endpoint receives the stored CloudEvent, signed with Standard Webhooks headers',
    messages: { ...subjectMessageRefs, anyEvent: { $ref: '#/components/messages/anyEvent' } },
  };
  operations.sendSocketIo = {
    action: 'send',
    title: 'Socket.IO `event` messages',
    channel: { $ref: '#/channels/deliveries' },
  };
  operations.sendSse = {
    action: 'send',
    title: 'SSE frames of GET /v1/stream',
    channel: { $ref: '#/channels/deliveries' },
  };
  operations.sendEndpoints = {
    action: 'send',
    title: 'Signed POSTs to outbound endpoints',
    channel: { $ref: '#/channels/endpoints' },
  };

  return {
    asyncapi: '3.0.0',
    info: {
      title: input.title,
      version: input.version,
      description:
        'Verified webhooks and first-party events, stored as CloudEvents and delivered over Socket.IO, SSE and outbound webhooks. ' +
        'Channels named by a subject carry that subject’s latest registered schema as the event data.',
    },
    defaultContentType: 'application/json',
    servers: {
      http: server(secure ? 'https' : 'http', '', 'Webhook ingest (/webhooks/<source>) and POST /v1/events'),
      socketio: server(secure ? 'wss' : 'ws', '/socket.io', 'Socket.IO (WebSocket transport), default namespace'),
      sse: server(secure ? 'https' : 'http', '/v1/stream', 'Server-Sent Events'),
    },
    channels,
    operations,
    components: { schemas, messages },
  };
}
