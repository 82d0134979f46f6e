/**
 * Property-based fuzzing of the HTTP intake (fast-check) through `app.inject()` of the real app —
 * real WAL, delivery thread and DuckDB behind it. Thousands of arbitrary JSON values, mutated
 * events, random bytes, content types, encodings and header values. For every answer:
 * - never a 5xx (a 503 would be admission or a full disk, neither of which may happen here);
 * - the body is JSON, and every 4xx carries a non-empty `error` string;
 * - nothing invalid is ever accepted: for each 202 the test decodes the request itself and checks
 *   each accepted event against an oracle written here from docs/ARCHITECTURE.md "The event" and
 *   the documented rules of
 *   src/intake/validate.ts — not by calling validateEvent.
 * FUZZ_RUNS scales the number of cases (default 1: about 10,000 requests, ~10 s); FUZZ_SEED replays a
 * run (fast-check prints the seed of a failure).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { gunzipSync, gzipSync } from 'node:zlib'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import { startTestServer } from '../helpers/in-process.ts'

const SCALE = Number(process.env['FUZZ_RUNS'] ?? 1)
const SEED = process.env['FUZZ_SEED'] === undefined ? undefined : Number(process.env['FUZZ_SEED'])

// The limits the server runs with (the defaults), restated for the oracle.
const MAX_STRING = 1024
const MAX_EVENT_ID = 128
const MAX_TAGS = 100
const MAX_DEPTH = 8
const MAX_METADATA_KEYS = 1000
const MAX_EVENT_BYTES = 64 * 1024
const CLOCK_SKEW = 300
const CHANNELS = ['web', 'mobile', 'api', 'email', 'push']
const KNOWN = new Set([
  'event_id',
  'event_name',
  'channel',
  'campaign_id',
  'user_id',
  'timestamp',
  'sent_at',
  'tags',
  'metadata',
])
const JSON_TYPES = ['application/json']
const NDJSON_TYPES = [
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/json-lines',
]

const now = () => Math.floor(Date.now() / 1000)

// ─── the oracle ──────────────────────────────────────────────────────────────────────────────

interface Clock {
  /** Server receive time lies in [from, to] (Unix ms). */
  readonly from: number
  readonly to: number
}

/** Why `value` is not a valid event (docs/ARCHITECTURE.md "The event"), or null when it is. */
function whyInvalid(value: unknown, clock: Clock, idempotencyKey: string | undefined): string | null {
  if (!isPlainObject(value)) return 'not an object'
  for (const key of Object.keys(value)) if (!KNOWN.has(key)) return `unknown field ${key}`
  const v = value as Record<string, unknown>
  const text = (field: string, max: number, required: boolean): string | null => {
    const s = v[field]
    if (s === undefined || s === null) return required ? `${field} missing` : null
    if (typeof s !== 'string') return `${field} not a string`
    if (s.length > max) return `${field} too long`
    if (s.trim() === '') return `${field} blank`
    if (!s.isWellFormed()) return `${field} lone surrogate`
    return null
  }
  const problem =
    text('event_id', MAX_EVENT_ID, false) ??
    text('event_name', MAX_STRING, true) ??
    text('user_id', MAX_STRING, true)
  if (problem) return problem
  if (!CHANNELS.includes(v['channel'] as string)) return 'channel'
  const campaign = v['campaign_id']
  if (
    campaign != null &&
    (typeof campaign !== 'string' || campaign.length > MAX_STRING || !campaign.isWellFormed())
  )
    return 'campaign_id'

  const ts = v['timestamp']
  if (typeof ts !== 'number' || !Number.isInteger(ts)) return 'timestamp not an integer'
  const latest = Math.round(clock.to / 1000)
  const sentAt = v['sent_at']
  if (sentAt != null) {
    if (typeof sentAt !== 'number' || !Number.isInteger(sentAt) || sentAt <= 0 || sentAt >= 1e11)
      return 'sent_at'
    // corrected = ts + (received − sent_at) for some received in [earliest, latest]
    if (ts + latest - sentAt <= 0) return 'timestamp not positive after correction'
    if (ts - sentAt > CLOCK_SKEW) return 'timestamp in the future after correction'
  } else {
    if (ts <= 0) return 'timestamp not positive'
    if (ts > latest + CLOCK_SKEW) return 'timestamp in the future'
  }

  const tags = v['tags']
  if (tags != null) {
    if (!Array.isArray(tags) || tags.length > MAX_TAGS) return 'tags'
    if (!tags.every((tag) => typeof tag === 'string' && tag.length <= MAX_STRING && tag.isWellFormed()))
      return 'tags entry'
  }
  const metadata = v['metadata']
  if (metadata != null) {
    if (!isPlainObject(metadata)) return 'metadata not an object'
    const problem = metadataProblem(metadata)
    if (problem) return problem
  }
  const key = idempotencyKey
  const eventId =
    typeof v['event_id'] === 'string' ? v['event_id'] : (key ?? '00000000-0000-8000-8000-000000000000')
  const normalized = {
    event_id: eventId,
    event_name: v['event_name'],
    channel: v['channel'],
    campaign_id: campaign ?? null,
    user_id: v['user_id'],
    timestamp: ts,
    received_at: clock.to,
    tags: tags ?? [],
    metadata: metadata ?? null,
  }
  // A batch's Idempotency-Key gets `:<index>` appended: allow for the longest suffix.
  const slack = key === undefined ? 0 : 8
  if (Buffer.byteLength(JSON.stringify(normalized)) > MAX_EVENT_BYTES + slack) return 'event too large'
  return null
}

/** Depth (the metadata object is level 0), total keys and JSON-only values, without recursion. */
function metadataProblem(metadata: object): string | null {
  let keys = 0
  const stack: [unknown, number][] = [[metadata, 0]]
  while (stack.length > 0) {
    const [value, level] = stack.pop()!
    if (typeof value === 'number' && !Number.isFinite(value)) return 'metadata number'
    // Integers JSON.parse may already have rounded are refused (issue 15): beyond ±(2^53 − 1).
    if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value))
      return 'metadata integer beyond 2^53'
    if (typeof value === 'string' && !value.isWellFormed()) return 'metadata lone surrogate'
    if (typeof value !== 'object' || value === null) continue
    if (!Array.isArray(value) && Object.keys(value).some((k) => !k.isWellFormed()))
      return 'metadata key lone surrogate'
    if (level > MAX_DEPTH) return 'metadata too deep'
    const children = Array.isArray(value) ? value : Object.values(value)
    if (!Array.isArray(value)) keys += children.length
    if (keys > MAX_METADATA_KEYS) return 'metadata has too many keys'
    for (const child of children) stack.push([child, level + 1])
  }
  return null
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// ─── requests and the invariants every answer must keep ──────────────────────────────────────

interface FuzzRequest {
  readonly route: '/events' | '/events/batch'
  readonly body: Buffer
  readonly headers: Record<string, string>
  readonly query: string
}

const stats = { requests: 0, accepted: 0, acceptedEvents: 0, byStatus: new Map<number, number>() }

async function exchange(app: FastifyInstance, request: FuzzRequest): Promise<void> {
  const from = Date.now()
  const answer = await app.inject({
    method: 'POST',
    url: request.route + request.query,
    headers: request.headers,
    payload: request.body,
  })
  const clock = { from, to: Date.now() }
  stats.requests++
  stats.byStatus.set(answer.statusCode, (stats.byStatus.get(answer.statusCode) ?? 0) + 1)
  const where = () =>
    `${answer.statusCode} for POST ${request.route}${request.query} headers=${JSON.stringify(request.headers)} ` +
    `body=${JSON.stringify(request.body.toString('latin1').slice(0, 300))} → ${answer.body.slice(0, 300)}`

  assert.ok(answer.statusCode < 500, `never a 5xx: ${where()}`)
  let body: unknown
  try {
    body = JSON.parse(answer.body)
  } catch {
    assert.fail(`the answer is JSON: ${where()}`)
  }
  if (answer.statusCode >= 400) {
    assert.ok(
      isPlainObject(body) && typeof body['error'] === 'string' && body['error'].length > 0,
      `a 4xx names its error: ${where()}`,
    )
  }
  if (answer.statusCode === 202) {
    stats.accepted++
    checkAccepted(request, body as Record<string, unknown>, clock, where)
  } else if (answer.statusCode === 400 && request.route === '/events/batch' && isPlainObject(body)) {
    if (Array.isArray(body['rejected'])) assert.equal(body['accepted'], 0, `all rejected: ${where()}`)
  }
}

/** A 202: decode the request as the contract says and check every accepted event. */
function checkAccepted(
  request: FuzzRequest,
  answer: Record<string, unknown>,
  clock: Clock,
  where: () => string,
) {
  const query = new URLSearchParams(request.query.slice(1))
  const wait = query.get('wait')
  assert.ok(
    query.getAll('wait').length <= 1 && [null, 'true', '1', 'false', '0'].includes(wait),
    `wait: ${where()}`,
  )
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase()
  const ndjson = NDJSON_TYPES.includes(type)
  assert.ok(ndjson || JSON_TYPES.includes(type), `accepted only JSON or NDJSON: ${where()}`)
  const encoding = (request.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
  assert.ok(
    ['identity', '', 'gzip', 'x-gzip'].includes(encoding),
    `accepted only gzip or identity: ${where()}`,
  )
  const bytes = encoding === 'gzip' || encoding === 'x-gzip' ? gunzip(request.body, where) : request.body
  const key = request.headers['idempotency-key']
  if (key !== undefined) assert.ok(key.length > 0 && key.length <= 128, `Idempotency-Key: ${where()}`)
  const text = bytes.toString('utf8')

  if (request.route === '/events') {
    let event: unknown
    try {
      event = JSON.parse(text)
    } catch {
      assert.fail(`accepted a body that is not JSON: ${where()}`)
    }
    const why = whyInvalid(event, clock, key)
    assert.equal(why, null, `accepted an invalid event (${why}): ${where()}`)
    const sentId = (event as Record<string, unknown>)['event_id']
    assert.equal(answer['status'], 'accepted', where())
    if (typeof sentId === 'string')
      assert.equal(answer['event_id'], sentId, `the answer names the event: ${where()}`)
    else if (key !== undefined) assert.equal(answer['event_id'], key, where())
    else
      assert.match(
        String(answer['event_id']),
        /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      )
    stats.acceptedEvents++
    return
  }

  const items = batchItems(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, ndjson, where)
  const rejected = new Set(
    (answer['rejected'] as { index: number }[]).map((r) => {
      assert.ok(
        Number.isInteger(r.index) && r.index >= 0 && r.index < items.length,
        `index in range: ${where()}`,
      )
      return r.index
    }),
  )
  assert.equal(
    Number(answer['accepted']) + Number(answer['duplicates']) + rejected.size,
    items.length,
    `every event is accounted for: ${where()}`,
  )
  items.forEach((item, index) => {
    if (rejected.has(index)) return
    assert.ok(item.parsed, `accepted an NDJSON line that is not JSON (index ${index}): ${where()}`)
    const why = whyInvalid(item.value, clock, key)
    assert.equal(why, null, `accepted an invalid event at index ${index} (${why}): ${where()}`)
    stats.acceptedEvents++
  })
}

/** The events of a batch body: a JSON array, {"events": [...]}, or NDJSON (blank lines skipped). */
function batchItems(
  text: string,
  ndjson: boolean,
  where: () => string,
): { parsed: boolean; value?: unknown }[] {
  if (ndjson) {
    return text
      .split('\n')
      .filter((line) => !/^[ \t\r\n]*$/.test(line))
      .map((line) => {
        try {
          return { parsed: true, value: JSON.parse(line) }
        } catch {
          return { parsed: false }
        }
      })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    assert.fail(`accepted a batch that is not JSON: ${where()}`)
  }
  const list = Array.isArray(value)
    ? value
    : isPlainObject(value) && Object.keys(value).length === 1 && Array.isArray(value['events'])
      ? value['events']
      : assert.fail(`accepted a batch of the wrong shape: ${where()}`)
  return (list as unknown[]).map((item) => ({ parsed: true, value: item }))
}

function gunzip(body: Buffer, where: () => string): Buffer {
  try {
    return gunzipSync(body)
  } catch {
    return assert.fail(`accepted a body that is not gzip: ${where()}`)
  }
}

// ─── generators ──────────────────────────────────────────────────────────────────────────────

const whitespace = fc.constantFrom(
  ' ',
  '\t',
  '\n',
  '\u00a0',
  '\u2003',
  '\u3000',
  '\ufeff',
  '\u2028',
  '\u200b',
)
const trickyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.array(whitespace, { minLength: 1, maxLength: 4 }).map((ws) => ws.join('')),
  fc.constantFrom('', 'web', 'WEB', ' web', 'null', '0', '__proto__', 'constructor'),
  fc.integer({ min: 1020, max: 1030 }).map((n) => 'x'.repeat(n)),
  fc.integer({ min: 125, max: 131 }).map((n) => 'i'.repeat(n)),
  fc.constant('\ud800'),
)
const trickyNumber = () =>
  fc.oneof(
    fc.integer({ min: now() - 10_000_000, max: now() }),
    fc.integer({ min: now() + 290, max: now() + 310 }),
    fc.constantFrom(
      0,
      -1,
      1,
      1e11,
      now() * 1000,
      now() * 1_000_000,
      2 ** 53,
      -(2 ** 53),
      0.5,
      now() + 0.5,
      -0,
    ),
    fc.double(),
    fc.integer(),
  )
const trickyValue = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 3, arbitrary: trickyString },
    { weight: 3, arbitrary: trickyNumber() },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [''], ['a', 1]) },
    { weight: 1, arbitrary: deepValue },
    { weight: 1, arbitrary: fc.array(trickyString, { maxLength: 120 }) },
  )
/** A value nested `depth` levels: around the metadata limit of 8. */
const deepValue = fc.tuple(fc.integer({ min: 6, max: 11 }), fc.boolean()).map(([depth, arrays]) => {
  let value: unknown = 1
  for (let i = 0; i < depth; i++) value = arrays ? [value] : { k: value }
  return value
})

const validEvent = () =>
  fc
    .record(
      {
        event_id: fc.oneof(
          fc.uuid(),
          fc.string({ minLength: 1, maxLength: 128 }).filter((s) => s.trim() !== ''),
        ),
        event_name: fc.string({ minLength: 1, maxLength: 64 }).filter((s) => s.trim() !== ''),
        channel: fc.constantFrom(...CHANNELS),
        campaign_id: fc.option(fc.string({ maxLength: 64 })),
        user_id: fc.string({ minLength: 1, maxLength: 64 }).filter((s) => s.trim() !== ''),
        timestamp: fc.integer({ min: 1, max: now() }),
        tags: fc.array(fc.string({ maxLength: 20 }), { maxLength: 10 }),
        metadata: fc.option(
          fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }),
        ),
      },
      { requiredKeys: ['event_name', 'channel', 'user_id', 'timestamp'] },
    )
    // Valid today: no metadata integer beyond ±(2^53 − 1) (refused since issue 15, item 18).
    .filter((e) => whyInvalid(e, { from: Date.now(), to: Date.now() }, undefined) === null)
    // A given event_id is never reused for other content (that is a 409 since issue 15, item 11).
    .map((e) => (e.event_id === undefined ? e : { ...e, event_id: `${e.event_id.slice(0, 100)}#${idSeq++}` }))
let idSeq = 0

/** A valid event with some fields replaced by arbitrary values, deleted, or joined by unknown ones. */
const mutatedEvent = () =>
  fc
    .tuple(
      validEvent(),
      fc.array(fc.tuple(fc.constantFrom(...KNOWN, 'received_at', 'userId', 'extra'), trickyValue()), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.array(fc.constantFrom(...KNOWN), { maxLength: 2 }),
      fc.boolean(),
    )
    .map(([event, replacements, deletions, sentNow]) => {
      const copy: Record<string, unknown> = { ...event }
      for (const [field, value] of replacements) {
        Object.defineProperty(copy, field, { value, enumerable: true, writable: true, configurable: true })
      }
      for (const field of deletions) delete copy[field]
      // A plausible sent_at, so the clock-skew correction is exercised, not only refused.
      if (copy['sent_at'] !== undefined && sentNow) copy['sent_at'] = now() - 5
      return copy
    })

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('application/json', 'application/x-ndjson') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/ndjson',
      'application/jsonl',
      'application/json-lines',
      'text/plain',
      'text/json',
      'application/json+x',
      'application/jsonx',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      '*/*',
      '',
      ';',
      'application/json;;;',
      'application/json, text/plain',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
)
const encoding = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.constantFrom('gzip', 'x-gzip', 'GZIP', ' gzip ', 'identity', '') },
  { weight: 1, arbitrary: fc.constantFrom('deflate', 'br', 'gzip, gzip', 'compress', 'zstd') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
)
const headerValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary-ascii', maxLength: 140 }),
  fc.integer({ min: 120, max: 135 }).map((n) => 'k'.repeat(n)),
)
const query = fc.oneof(
  { weight: 8, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '?wait=false',
      '?wait=true',
      '?wait=0',
      '?wait=1',
      '?wait=no',
      '?wait',
      '?wait=false&wait=true',
      '?x=1',
      '?wait=%ZZ',
    ),
  },
)

/** Body bytes for a content encoding: usually gzip'd when gzip is named, sometimes not. */
function encode(body: Buffer, contentEncoding: string | undefined, gzipIt: boolean): Buffer {
  const named = contentEncoding?.trim().toLowerCase()
  return (named === 'gzip' || named === 'x-gzip') && gzipIt ? gzipSync(body) : body
}

function headersOf(
  type: string | undefined,
  contentEncoding: string | undefined,
  extra: Record<string, string> = {},
) {
  const headers: Record<string, string> = { ...extra }
  if (type !== undefined) headers['content-type'] = type
  if (contentEncoding !== undefined) headers['content-encoding'] = contentEncoding
  return headers
}

/** Events as a batch body in one of the three shapes. */
function batchBody(events: unknown[], shape: 'array' | 'object' | 'ndjson'): { body: string; type: string } {
  if (shape === 'ndjson')
    return { body: events.map((e) => JSON.stringify(e) ?? 'null').join('\n'), type: 'application/x-ndjson' }
  return { body: JSON.stringify(shape === 'array' ? events : { events }), type: 'application/json' }
}

// ─── the properties ──────────────────────────────────────────────────────────────────────────

test('fuzzing the intake never yields a 5xx, a non-JSON answer or an accepted invalid event', {
  timeout: 10 * 60_000,
}, async (t) => {
  const server = await startTestServer(t)
  const app = server.app
  const runs = (n: number) => ({
    numRuns: Math.max(1, Math.round(n * SCALE)),
    ...(SEED !== undefined && { seed: SEED }),
  })
  const started = performance.now()

  await t.test('arbitrary JSON values as bodies', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue(),
          fc.anything({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v ?? null) ?? 'null')),
        ),
        fc.constantFrom('/events', '/events/batch') as fc.Arbitrary<'/events' | '/events/batch'>,
        async (value, route) => {
          await exchange(app, {
            route,
            body: Buffer.from(JSON.stringify(value)),
            headers: { 'content-type': 'application/json' },
            query: '',
          })
        },
      ),
      runs(1800),
    )
  })

  await t.test('valid events with fields replaced by arbitrary values', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(mutatedEvent(), { minLength: 1, maxLength: 6 }),
        fc.constantFrom('single', 'array', 'object', 'ndjson'),
        fc.option(fc.string({ minLength: 1, maxLength: 20 }), { freq: 4 }),
        async (events, shape, idempotencyKey) => {
          const extra: Record<string, string> =
            idempotencyKey === null ? {} : { 'idempotency-key': idempotencyKey }
          if (shape === 'single') {
            await exchange(app, {
              route: '/events',
              body: Buffer.from(JSON.stringify(events[0])),
              headers: { 'content-type': 'application/json', ...extra },
              query: '',
            })
            return
          }
          const { body, type } = batchBody(events, shape)
          await exchange(app, {
            route: '/events/batch',
            body: Buffer.from(body),
            headers: { 'content-type': type, ...extra },
            query: '',
          })
        },
      ),
      runs(3600),
    )
  })

  await t.test('arbitrary bytes with random content types and encodings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.string({ unit: 'binary', maxLength: 200 }).map((s) => new Uint8Array(Buffer.from(s))),
          // Near-JSON: a valid event with a few bytes flipped, cut or duplicated.
          fc
            .tuple(
              validEvent(),
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
              fc.nat(),
            )
            .map(([event, flips, cut]) => {
              const bytes = Buffer.from(JSON.stringify(event))
              for (const [at, byte] of flips) bytes[at % bytes.length] = byte
              return new Uint8Array(bytes.subarray(0, bytes.length - (cut % 3)))
            }),
        ),
        fc.constantFrom('/events', '/events/batch') as fc.Arbitrary<'/events' | '/events/batch'>,
        contentType,
        encoding,
        fc.boolean(),
        async (bytes, route, type, contentEncoding, gzipIt) => {
          await exchange(app, {
            route,
            body: encode(Buffer.from(bytes), contentEncoding, gzipIt),
            headers: headersOf(type, contentEncoding),
            query: '',
          })
        },
      ),
      runs(2100),
    )
  })

  await t.test('valid and mutated events under random headers and query strings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(validEvent(), mutatedEvent()),
        fc.constantFrom('/events', '/events/batch') as fc.Arbitrary<'/events' | '/events/batch'>,
        fc.option(contentType, { freq: 5 }),
        encoding,
        fc.boolean(),
        fc.dictionary(
          fc.constantFrom(
            'idempotency-key',
            'x-request-id',
            'accept',
            'accept-encoding',
            'transfer-encoding',
            'expect',
            'x-forwarded-for',
            'authorization',
          ),
          headerValue,
          { maxKeys: 3 },
        ),
        query,
        async (event, route, type, contentEncoding, gzipIt, extra, q) => {
          const ndjson = type !== null && NDJSON_TYPES.includes(type.split(';')[0].trim().toLowerCase())
          const text = route === '/events/batch' && !ndjson ? JSON.stringify([event]) : JSON.stringify(event)
          const headers = headersOf(type ?? undefined, contentEncoding, extra)
          delete headers['transfer-encoding']
          delete headers['expect']
          await exchange(app, {
            route,
            body: encode(Buffer.from(text), contentEncoding, gzipIt),
            headers,
            query: q,
          })
        },
      ),
      runs(1500),
    )
  })

  await t.test('valid events are accepted (the fuzzer reaches the accept path)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(validEvent(), { minLength: 1, maxLength: 5 }),
        fc.boolean(),
        async (events, batch) => {
          const before = stats.acceptedEvents
          if (batch) {
            const { body, type } = batchBody(events, 'ndjson')
            await exchange(app, {
              route: '/events/batch',
              body: Buffer.from(body),
              headers: { 'content-type': type },
              query: '',
            })
            assert.equal(stats.acceptedEvents - before, events.length)
          } else {
            await exchange(app, {
              route: '/events',
              body: Buffer.from(JSON.stringify(events[0])),
              headers: { 'content-type': 'application/json' },
              query: '',
            })
            assert.equal(stats.acceptedEvents - before, 1)
          }
        },
      ),
      runs(900),
    )
  })

  const seconds = (performance.now() - started) / 1000
  const statuses = [...stats.byStatus]
    .sort(([a], [b]) => a - b)
    .map(([s, n]) => `${s}×${n}`)
    .join(' ')
  t.diagnostic(
    `${stats.requests} requests in ${seconds.toFixed(1)} s: ${statuses}; ${stats.acceptedEvents} events accepted, each checked by the oracle`,
  )
  // Still alive and serving after all of it.
  const health = await app.inject({ method: 'GET', url: '/health' })
  assert.equal(health.statusCode, 200)
  assert.ok(stats.accepted > 100, 'the fuzzer reached the accept path often')
})
