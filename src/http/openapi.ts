/**
 * The OpenAPI 3.1 description of every API route, served at /openapi.json and rendered at /docs,
 * with an example of every request and response. The Event schema is derived from the field
 * table (src/event/fields.ts).
 */
import { EVENT_EXAMPLE, EVENT_TABLE, type EventField } from '../event/fields.ts'

const error = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string', description: 'One sentence naming what is wrong.' } },
}
const errorResponse = (description: string, example: string) => ({
  description,
  content: { 'application/json': { schema: error, ...errorExample(example) } },
})
/** A field's JSON schema, from the field table. */
function fieldSchema(field: EventField): Record<string, unknown> {
  const limit =
    field.maxLength === 'maxStringLength' ? ' At most maxStringLength (default 1024) characters.' : ''
  const maxLength = typeof field.maxLength === 'number' ? { maxLength: field.maxLength } : {}
  const described = { description: field.description + limit, examples: [field.example] }
  switch (field.kind) {
    case 'text':
      return { type: 'string', minLength: 1, ...maxLength, ...described }
    case 'string':
    case 'label':
      return { type: field.nullable ? ['string', 'null'] : 'string', ...maxLength, ...described }
    case 'enum':
      return { type: 'string', enum: field.values, ...described }
    case 'seconds': {
      const seconds = { type: 'integer', minimum: 1, description: 'Unix seconds.' }
      if (!field.acceptsIso) return { ...seconds, ...described }
      const iso = { type: 'string', format: 'date-time', description: 'ISO-8601 with a zone (Z or ±hh:mm).' }
      return { oneOf: [seconds, iso], ...described, examples: [field.example, '2024-08-12T15:13:32Z'] }
    }
    case 'millis':
      return { type: 'integer', minimum: 1, ...described }
    case 'strings':
      return { type: 'array', items: { type: 'string', ...maxLength }, ...described }
    case 'object':
      return { type: field.nullable ? ['object', 'null'] : 'object', ...described }
  }
}

const inputFields = (EVENT_TABLE as readonly EventField[]).filter((field) => field.input)

/** An optional field's schema also takes null (null means absent). */
function inputSchema(field: EventField): Record<string, unknown> {
  const schema = fieldSchema(field)
  if (field.required) return schema
  if (schema.oneOf !== undefined)
    return { ...schema, oneOf: [...(schema.oneOf as object[]), { type: 'null' }] }
  const type = schema.type as string | string[]
  return { ...schema, type: Array.isArray(type) ? type : [type, 'null'] }
}

/** The Event schema: the input fields of the field table (src/event/fields.ts). */
const eventSchema = {
  type: 'object',
  description:
    'One event. Every string (ids, names, tags, metadata keys and values) must be well-formed Unicode: a lone UTF-16 surrogate is refused, naming the field. Unknown fields are refused; null means absent.',
  required: inputFields.filter((field) => field.required).map((field) => field.name),
  additionalProperties: false,
  properties: Object.fromEntries(inputFields.map((field) => [field.name, inputSchema(field)])),
  example: EVENT_EXAMPLE,
}
const event = { $ref: '#/components/schemas/Event' }
const example2 = {
  ...EVENT_EXAMPLE,
  event_id: '5d1c2a3b-0c4d-4e5f-8a6b-7c8d9e0f1a2b',
  event_name: 'signup',
  channel: 'mobile',
  timestamp: '2024-08-12T15:14:02Z',
}
/** `{"error": …}` as an example of a response. */
const errorExample = (error: string) => ({ example: { error } })
const jsonExample = (value: unknown) => ({ example: value })
const wait = {
  name: 'wait',
  in: 'query',
  schema: { type: 'boolean', default: true },
  description: '`false` answers once the event is written, before the fsync (the fast, non-durable answer).',
}
const deadLetter = {
  name: 'dead_letter',
  in: 'query',
  schema: { type: 'boolean', default: true },
  description:
    '`false`: invalid events are reported by index but not kept in the dead-letter store (for a client that keeps them itself, like `spillway dlq replay`).',
}
const overload = {
  description:
    'A resource bound is hit (admission control, checked before the body is read) or the server is closing; retry after `Retry-After` seconds.',
  headers: { 'Retry-After': { schema: { type: 'integer' } } },
  content: {
    'application/json': {
      schema: {
        ...error,
        properties: {
          ...error.properties,
          bound: {
            type: 'string',
            enum: ['wal_backlog', 'queue', 'pending_bytes'],
            description: 'The bound that refused the request (absent while shutting down).',
          },
          value: { type: 'integer', description: 'Its value (bytes, or events for queue).' },
          limit: { type: 'integer', description: 'Its configured limit.' },
        },
      },
      ...jsonExample({
        error:
          'the WAL backlog not yet delivered to the slowest sink is 1.0 GiB, limit 1.0 GiB (maxWalBacklogBytes)',
        bound: 'wal_backlog',
        value: 1073741824,
        limit: 1073741824,
      }),
    },
  },
}
const status = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' }, error: { type: 'string' } },
}
const counts = {
  type: 'object',
  required: ['total_events', 'unique_users'],
  properties: { total_events: { type: 'integer' }, unique_users: { type: 'integer' } },
}

export const openapiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Spillway API',
    version: '0.1.0',
    description:
      "Durable, backpressured event ingestion. A 202 means the event is in the write-ahead log and the log is fsync'd.",
  },
  paths: {
    '/events': {
      post: {
        summary: 'Ingest one event',
        parameters: [
          wait,
          {
            name: 'Idempotency-Key',
            in: 'header',
            schema: { type: 'string', maxLength: 128 },
            description: 'Used as the event_id when the body has none.',
          },
          { name: 'Content-Encoding', in: 'header', schema: { type: 'string', enum: ['gzip', 'identity'] } },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: event,
              examples: {
                unixSeconds: { summary: 'timestamp in Unix seconds', value: EVENT_EXAMPLE },
                iso8601: { summary: 'timestamp as ISO-8601 with a zone', value: example2 },
              },
            },
          },
        },
        responses: {
          202: {
            description:
              'Accepted (durable unless wait=false). A duplicate is also 202, with duplicate: true.',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['status', 'event_id'],
                  properties: {
                    status: { const: 'accepted' },
                    event_id: { type: 'string' },
                    duplicate: { type: 'boolean' },
                  },
                },
                examples: {
                  accepted: { value: { status: 'accepted', event_id: EVENT_EXAMPLE.event_id } },
                  duplicate: {
                    value: { status: 'accepted', event_id: EVENT_EXAMPLE.event_id, duplicate: true },
                  },
                },
              },
            },
          },
          400: errorResponse(
            'Invalid event, JSON, UTF-8 (a leading BOM is ignored) or gzip, or a body nested deeper than any event can be; the message names the field or the limit.',
            'channel must be one of web, mobile, api, email, push, got "fax"',
          ),
          413: errorResponse(
            'Body or event too large (after gzip inflation).',
            'event is larger than 65536 bytes (got 70211)',
          ),
          415: errorResponse(
            'Content-Type or Content-Encoding not supported.',
            'Content-Type "text/plain" is not supported; send application/json',
          ),
          503: overload,
        },
      },
    },
    '/events/batch': {
      post: {
        summary: 'Ingest many events: a JSON array, {"events": [...]}, or NDJSON',
        description:
          'Valid events are accepted; invalid ones are reported by index and kept in the dead-letter store (when it is full, the whole request is refused with 503). `/events/bulk` is an alias.',
        parameters: [
          wait,
          deadLetter,
          { name: 'Content-Encoding', in: 'header', schema: { type: 'string', enum: ['gzip', 'identity'] } },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                oneOf: [
                  { type: 'array', items: event },
                  {
                    type: 'object',
                    required: ['events'],
                    properties: { events: { type: 'array', items: event } },
                  },
                ],
              },
              examples: {
                array: { summary: 'a JSON array', value: [EVENT_EXAMPLE, example2] },
                object: { summary: '{"events": [...]}', value: { events: [EVENT_EXAMPLE, example2] } },
              },
            },
            'application/x-ndjson': {
              schema: { type: 'string', description: 'One JSON event per line.' },
              example: `${JSON.stringify(EVENT_EXAMPLE)}\n${JSON.stringify(example2)}\n`,
            },
          },
        },
        responses: {
          202: {
            description: 'At least one event accepted.',
            content: {
              'application/json': {
                schema: { $ref: '#/components/schemas/BatchResult' },
                ...jsonExample({
                  accepted: 998,
                  duplicates: 1,
                  rejected: [{ index: 7, error: 'user_id is required' }],
                }),
              },
            },
          },
          400: {
            description:
              'Every event invalid (same body); or, as {"error"} only, the body is not UTF-8 JSON (a leading BOM is ignored) or is nested deeper than any event can be (maxDepth).',
            content: {
              'application/json': {
                schema: { $ref: '#/components/schemas/BatchResult' },
                ...jsonExample({
                  accepted: 0,
                  duplicates: 0,
                  rejected: [
                    {
                      index: 0,
                      error:
                        'timestamp has no time zone, got "2024-08-12T15:13:32"; add Z (UTC) or an offset such as +02:00',
                    },
                  ],
                }),
              },
            },
          },
          413: errorResponse(
            'Body too large (after inflation) or too many events.',
            'batch has 10001 events; at most 10000 are accepted in one request',
          ),
          415: errorResponse(
            'Content-Type or Content-Encoding not supported.',
            'Content-Encoding "br" is not supported; send gzip or identity',
          ),
          503: overload,
        },
      },
    },
    '/metrics': {
      get: {
        summary: 'Aggregate counts of one event name',
        parameters: [
          { name: 'event_name', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'from', in: 'query', schema: { type: 'integer' }, description: 'Unix seconds, inclusive.' },
          { name: 'to', in: 'query', schema: { type: 'integer' }, description: 'Unix seconds, inclusive.' },
          { name: 'group_by', in: 'query', schema: { type: 'string', enum: ['channel', 'hour', 'day'] } },
        ],
        responses: {
          200: {
            description: 'Exact counts; duplicates are never counted. Hour/day groups are ISO-8601 UTC.',
            content: {
              'application/json': {
                schema: {
                  oneOf: [
                    {
                      ...counts,
                      properties: {
                        event_name: { type: 'string' },
                        from: { type: 'integer' },
                        to: { type: 'integer' },
                        ...counts.properties,
                      },
                    },
                    {
                      type: 'object',
                      required: ['event_name', 'grouped_by', 'data'],
                      properties: {
                        event_name: { type: 'string' },
                        from: { type: 'integer' },
                        to: { type: 'integer' },
                        grouped_by: { type: 'string', enum: ['channel', 'hour', 'day'] },
                        data: {
                          type: 'array',
                          items: {
                            ...counts,
                            properties: { group: { type: 'string' }, ...counts.properties },
                          },
                        },
                      },
                    },
                  ],
                },
                examples: {
                  total: {
                    value: { event_name: 'product_view', total_events: 1520, unique_users: 310 },
                  },
                  byChannel: {
                    value: {
                      event_name: 'product_view',
                      grouped_by: 'channel',
                      data: [
                        { group: 'web', total_events: 1200, unique_users: 250 },
                        { group: 'mobile', total_events: 320, unique_users: 75 },
                      ],
                    },
                  },
                },
              },
            },
          },
          400: errorResponse(
            'A parameter is missing or malformed; the message names it.',
            'event_name is required',
          ),
          503: errorResponse(
            'The store did not answer.',
            'the query did not finish within queryTimeoutMs (10000 ms); retry',
          ),
        },
      },
    },
    '/metrics/top': {
      get: {
        summary: "The most frequent event names in a window (the dashboard's top events)",
        parameters: [
          { name: 'from', in: 'query', schema: { type: 'integer' }, description: 'Unix seconds, inclusive.' },
          { name: 'to', in: 'query', schema: { type: 'integer' }, description: 'Unix seconds, inclusive.' },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 10 } },
        ],
        responses: {
          200: {
            description: 'Most events first, then name; exact counts, duplicates never counted.',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['limit', 'data'],
                  properties: {
                    from: { type: 'integer' },
                    to: { type: 'integer' },
                    limit: { type: 'integer' },
                    data: {
                      type: 'array',
                      items: {
                        ...counts,
                        properties: { event_name: { type: 'string' }, ...counts.properties },
                      },
                    },
                  },
                },
                ...jsonExample({
                  from: 1723471200,
                  to: 1723478400,
                  limit: 2,
                  data: [
                    { event_name: 'product_view', total_events: 1520, unique_users: 310 },
                    { event_name: 'signup', total_events: 48, unique_users: 48 },
                  ],
                }),
              },
            },
          },
          400: errorResponse(
            'A parameter is malformed; the message names it.',
            'limit must be a whole number from 1 to 100, got "0"',
          ),
          503: errorResponse(
            'The store did not answer.',
            'the query did not finish within queryTimeoutMs (10000 ms); retry',
          ),
        },
      },
    },
    '/metrics/series': {
      get: {
        summary: 'One event name over time, by bucket and channel',
        parameters: [
          { name: 'event_name', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'from', in: 'query', schema: { type: 'integer' }, description: 'Unix seconds, inclusive.' },
          { name: 'to', in: 'query', schema: { type: 'integer' }, description: 'Unix seconds, inclusive.' },
          {
            name: 'bucket',
            in: 'query',
            schema: { type: 'string', enum: ['minute', 'hour', 'day'], default: 'hour' },
          },
        ],
        responses: {
          200: {
            description:
              'A row per (bucket, channel) with events, bucket start (ISO-8601 UTC) ascending, then channel; at most 10,000 buckets.',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['event_name', 'bucket', 'data'],
                  properties: {
                    event_name: { type: 'string' },
                    from: { type: 'integer' },
                    to: { type: 'integer' },
                    bucket: { type: 'string', enum: ['minute', 'hour', 'day'] },
                    data: {
                      type: 'array',
                      items: {
                        ...counts,
                        properties: {
                          time: { type: 'string' },
                          channel: { type: 'string' },
                          ...counts.properties,
                        },
                      },
                    },
                  },
                },
                ...jsonExample({
                  event_name: 'product_view',
                  bucket: 'hour',
                  data: [
                    { time: '2024-08-12T15:00:00Z', channel: 'mobile', total_events: 80, unique_users: 21 },
                    { time: '2024-08-12T15:00:00Z', channel: 'web', total_events: 300, unique_users: 64 },
                  ],
                }),
              },
            },
          },
          400: errorResponse(
            'A parameter is missing or malformed, or the window holds more than 10,000 buckets; the message names it.',
            'from…to spans 10081 minute buckets, more than 10000; narrow from/to or use a larger bucket',
          ),
          503: errorResponse(
            'The store did not answer.',
            'the query did not finish within queryTimeoutMs (10000 ms); retry',
          ),
        },
      },
    },
    '/health': {
      get: {
        summary: 'Liveness',
        responses: {
          200: {
            description: 'While the process runs.',
            content: { 'application/json': { schema: status, ...jsonExample({ status: 'healthy' }) } },
          },
        },
      },
    },
    '/ready': {
      get: {
        summary: 'Readiness: WAL recovered and every sink answers',
        responses: {
          200: {
            description: 'Ready.',
            content: { 'application/json': { schema: status, ...jsonExample({ status: 'ready' }) } },
          },
          503: {
            description: 'Not ready; `error` says why (details may follow).',
            content: {
              'application/json': {
                schema: status,
                ...jsonExample({
                  status: 'not ready',
                  error: 'WAL writes failing: no space left on device (ENOSPC)',
                }),
              },
            },
          },
        },
      },
    },
  },
  components: {
    schemas: {
      Event: eventSchema,
      BatchResult: {
        type: 'object',
        required: ['accepted', 'duplicates', 'rejected'],
        properties: {
          accepted: { type: 'integer' },
          duplicates: { type: 'integer' },
          rejected: {
            type: 'array',
            items: {
              type: 'object',
              required: ['index', 'error'],
              properties: { index: { type: 'integer' }, error: { type: 'string' } },
            },
          },
          error: { type: 'string', description: 'Present on 400.' },
          results: {
            type: 'array',
            description:
              'Only with the query parameter `results=full` (any other value is a 400): every input event in input order, with its fate and the id it is stored under (generated ids included; a rejected event: its own id, or null). `reason`: `invalid` (dead-lettered) or `conflict` (the event_id was already used for a different event).',
            items: {
              type: 'object',
              required: ['index', 'status', 'event_id'],
              properties: {
                index: { type: 'integer' },
                status: { type: 'string', enum: ['accepted', 'duplicate', 'rejected'] },
                event_id: { type: ['string', 'null'] },
                error: { type: 'string' },
                reason: { type: 'string', enum: ['invalid', 'conflict'] },
              },
            },
          },
        },
      },
    },
  },
} as const
