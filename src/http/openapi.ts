/** The OpenAPI 3.1 description of every API route, served at /openapi.json and rendered at /docs. */
const error = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string', description: 'One sentence naming what is wrong.' } },
}
const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: error } },
})
const event = {
  type: 'object',
  description:
    'Every string (ids, names, tags, metadata keys and values) must be well-formed Unicode: a lone UTF-16 surrogate is refused, naming the field.',
  required: ['event_name', 'user_id', 'timestamp', 'channel'],
  additionalProperties: false,
  properties: {
    event_id: {
      type: 'string',
      maxLength: 128,
      description: 'Idempotency key; events sharing it inside the dedup window are stored once.',
    },
    event_name: { type: 'string', minLength: 1 },
    channel: { type: 'string', enum: ['web', 'mobile', 'api', 'email', 'push'] },
    campaign_id: { type: ['string', 'null'] },
    user_id: { type: 'string', minLength: 1 },
    timestamp: {
      type: 'integer',
      minimum: 1,
      description: 'Unix seconds; not in the future beyond the clock-skew allowance.',
    },
    sent_at: {
      type: 'integer',
      minimum: 1,
      description: "The client's clock when it sent, Unix seconds; corrects client clock skew.",
    },
    tags: { type: 'array', items: { type: 'string' } },
    metadata: {
      type: 'object',
      description:
        'Any JSON object, nested at most maxDepth (8) levels. An integer beyond ±(2^53 − 1) is refused (400 naming it): JSON numbers cannot carry it exactly, so send big ids as strings.',
    },
  },
  example: {
    event_id: '0b6c9f0e-5f1c-4c39-9a57-5a3f0f1d2e11',
    event_name: 'product_view',
    channel: 'web',
    campaign_id: 'cmp_987',
    user_id: 'user_123',
    timestamp: 1723475612,
    tags: ['electronics', 'homepage'],
    metadata: { product_id: 'prod-789', price: 129.99 },
  },
}
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
    },
  },
}
const counts = {
  type: 'object',
  required: ['total_events', 'unique_users'],
  properties: { total_events: { type: 'integer' }, unique_users: { type: 'integer' } },
}

export const openapiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'Spillway',
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
        requestBody: { required: true, content: { 'application/json': { schema: event } } },
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
              },
            },
          },
          400: errorResponse(
            'Invalid event, JSON, UTF-8 (a leading BOM is ignored) or gzip, or a body nested deeper than any event can be; the message names the field or the limit.',
          ),
          413: errorResponse('Body or event too large (after gzip inflation).'),
          415: errorResponse('Content-Type or Content-Encoding not supported.'),
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
            },
            'application/x-ndjson': { schema: { type: 'string', description: 'One JSON event per line.' } },
          },
        },
        responses: {
          202: {
            description: 'At least one event accepted.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/BatchResult' } } },
          },
          400: {
            description:
              'Every event invalid (same body); or, as {"error"} only, the body is not UTF-8 JSON (a leading BOM is ignored) or is nested deeper than any event can be (maxDepth).',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/BatchResult' } } },
          },
          413: errorResponse('Body too large (after inflation) or too many events.'),
          415: errorResponse('Content-Type or Content-Encoding not supported.'),
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
              },
            },
          },
          400: errorResponse('A parameter is missing or malformed; the message names it.'),
          503: errorResponse('The store did not answer.'),
        },
      },
    },
    '/health': {
      get: {
        summary: 'Liveness',
        responses: { 200: { description: '{"status":"healthy"} while the process runs.' } },
      },
    },
    '/ready': {
      get: {
        summary: 'Readiness: WAL recovered and every sink answers',
        responses: {
          200: { description: '{"status":"ready"}' },
          503: { description: '{"status":"not ready","error":"…"}' },
        },
      },
    },
  },
  components: {
    schemas: {
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
