import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { parseBatch, validateBatch } from '../../../src/intake/batch.ts'
import { decodeEvents, encodeEvents, serializeEvent } from '../../../src/intake/serialize.ts'
import { CHANNELS, type IntakeLimits, type NormalizedEvent } from '../../../src/intake/types.ts'
import { validateEvent } from '../../../src/intake/validate.ts'
import { NOW_SECONDS, RECEIVED_AT } from './fixtures.ts'

const NUM_RUNS = 500

/** Small limits, so generated events hit every bound. */
const limits: IntakeLimits = {
  maxEventBytes: 1024,
  maxStringLength: 24,
  maxTags: 4,
  maxDepth: 3,
  clockSkewSeconds: 300,
}

/** Sometimes a value the rule wants, sometimes anything JSON: events that are mostly almost valid. */
const maybe = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: fc.jsonValue() })
const text = fc.string({ maxLength: 30, unit: 'grapheme' })

/**
 * fast-check favours extreme doubles, and every double beyond 2^53 is an integer validation
 * refuses (it may have been rounded): keep most generated metadata storable. The `maybe` branch
 * still sends raw JSON values, unsafe integers included.
 */
function safeIntegers(value: fc.JsonValue): fc.JsonValue {
  if (typeof value === 'number')
    return Number.isInteger(value) && !Number.isSafeInteger(value) ? value % 1000 : value
  if (Array.isArray(value)) return value.map(safeIntegers)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, safeIntegers(v as fc.JsonValue)]))
  }
  return value
}

const eventLike = fc.record(
  {
    event_id: maybe(fc.string({ minLength: 1, maxLength: 130 })),
    event_name: maybe(text),
    user_id: maybe(text),
    channel: maybe(fc.constantFrom(...CHANNELS, 'fax', 'Web')),
    campaign_id: maybe(fc.option(text)),
    timestamp: maybe(
      fc.oneof(
        fc.integer({ min: -10, max: NOW_SECONDS + 400 }),
        fc.integer({ min: NOW_SECONDS - 1e6, max: NOW_SECONDS + 400 }),
      ),
    ),
    sent_at: maybe(fc.integer({ min: NOW_SECONDS - 1e5, max: NOW_SECONDS + 1e5 })),
    tags: maybe(fc.array(text, { maxLength: 6 })),
    metadata: maybe(
      fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 4 }).map(safeIntegers), {
        maxKeys: 6,
      }),
    ),
    extra: fc.jsonValue(),
  },
  { requiredKeys: ['event_name', 'user_id', 'channel', 'timestamp'] },
)

/** What a request body turns into: the generated event through JSON text (no -0, no null prototypes). */
function asParsed(raw: Record<string, unknown>, withExtra = false): Record<string, unknown> {
  const input: Record<string, unknown> = JSON.parse(JSON.stringify(raw))
  if (!withExtra) delete input.extra
  return input
}

const context = fc.record(
  { receivedAt: fc.constant(RECEIVED_AT), idempotencyKey: fc.string({ minLength: 1, maxLength: 20 }) },
  { requiredKeys: ['receivedAt'] },
)

function depthInside(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0
  let deepest = 0
  for (const child of Object.values(value)) {
    if (typeof child === 'object' && child !== null) deepest = Math.max(deepest, 1 + depthInside(child))
  }
  return deepest
}

function assertInvariants(event: NormalizedEvent, input: Record<string, unknown>): void {
  assert.equal(typeof event.event_id, 'string')
  assert.ok(event.event_id.length > 0)
  for (const field of ['event_name', 'user_id'] as const) {
    assert.equal(typeof event[field], 'string')
    assert.ok(event[field].trim().length > 0 && event[field].length <= limits.maxStringLength)
    assert.equal(event[field], input[field])
  }
  assert.ok((CHANNELS as readonly string[]).includes(event.channel))
  assert.ok(
    event.campaign_id === null || (typeof event.campaign_id === 'string' && event.campaign_id.length <= 24),
  )
  assert.ok(Number.isInteger(event.timestamp))
  assert.ok(event.timestamp > 0)
  assert.ok(event.timestamp <= Math.round(RECEIVED_AT / 1000) + limits.clockSkewSeconds)
  assert.equal(event.received_at, RECEIVED_AT)
  assert.ok(Array.isArray(event.tags) && event.tags.length <= limits.maxTags)
  for (const tag of event.tags) assert.ok(typeof tag === 'string' && tag.length <= limits.maxStringLength)
  assert.ok(event.metadata === null || (typeof event.metadata === 'object' && !Array.isArray(event.metadata)))
  assert.ok(depthInside(event.metadata) <= limits.maxDepth)
  const line = serializeEvent(event)
  assert.ok(!line.includes('\n'))
  assert.ok(Buffer.byteLength(line) <= limits.maxEventBytes)
  assert.deepEqual(decodeEvents(encodeEvents([event])), [event])
}

describe('validateEvent properties', () => {
  test('any JSON value gets a verdict and never an exception', () => {
    fc.assert(
      fc.property(fc.jsonValue(), context, (value, ctx) => {
        const result = validateEvent(value, ctx, limits)
        assert.equal(typeof result.ok, 'boolean')
        if (!result.ok) assert.ok(typeof result.error === 'string' && result.error.length > 0)
      }),
      { numRuns: NUM_RUNS * 2 },
    )
  })

  test('any JSON text parsed as an event gets a verdict', () => {
    fc.assert(
      fc.property(fc.json(), (json) => {
        assert.equal(
          typeof validateEvent(JSON.parse(json), { receivedAt: RECEIVED_AT }, limits).ok,
          'boolean',
        )
      }),
      { numRuns: NUM_RUNS },
    )
  })

  test('every accepted event satisfies the invariants, and a rejection names a field', () => {
    let accepted = 0
    fc.assert(
      fc.property(eventLike, context, fc.boolean(), (raw, ctx, withExtra) => {
        const input = asParsed(raw, withExtra)
        const result = validateEvent(input, ctx, limits)
        if (result.ok) {
          accepted++
          assert.ok(!('extra' in input), 'an unknown field was accepted')
          assertInvariants(result.event, input)
          assert.equal(result.skewSeconds === null, input.sent_at == null)
          if (input.event_id != null) assert.equal(result.event.event_id, input.event_id)
          else if (ctx.idempotencyKey) assert.equal(result.event.event_id, ctx.idempotencyKey)
        } else {
          assert.match(
            result.error,
            /^(event_id|event_name|channel|campaign_id|user_id|timestamp|sent_at|tags(\[\d+\])?|metadata[^ ]*|unknown field "|event is larger)/,
          )
        }
      }),
      { numRuns: NUM_RUNS * 4 },
    )
    assert.ok(
      accepted > NUM_RUNS / 10,
      `only ${accepted} generated events were accepted; the generator needs tuning`,
    )
  })

  test('validation is deterministic and the content id ignores key order', () => {
    fc.assert(
      fc.property(eventLike, (raw) => {
        const input = asParsed(raw)
        delete input.event_id
        const reversed = Object.fromEntries(Object.entries(input).reverse())
        const a = validateEvent(input, { receivedAt: RECEIVED_AT }, limits)
        const b = validateEvent(reversed, { receivedAt: RECEIVED_AT }, limits)
        assert.deepEqual(a, b)
      }),
      { numRuns: NUM_RUNS },
    )
  })

  test('NDJSON of arbitrary lines parses and validates without throwing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.json(), fc.string({ maxLength: 20 })), { minLength: 1, maxLength: 20 }),
        (lines) => {
          let parsed: ReturnType<typeof parseBatch>
          try {
            parsed = parseBatch(lines.join('\n'), true, 50)
          } catch {
            return // an all-blank body is an empty batch
          }
          const result = validateBatch(parsed.items, parsed.lineErrors, { receivedAt: RECEIVED_AT }, limits)
          assert.equal(result.events.length + result.rejected.length, parsed.items.length)
        },
      ),
      { numRuns: NUM_RUNS },
    )
  })

  test('decode(encode(events)) returns the events', () => {
    fc.assert(
      fc.property(fc.array(eventLike, { maxLength: 10 }), (raws) => {
        const events: NormalizedEvent[] = []
        for (const raw of raws) {
          const input = asParsed(raw)
          const result = validateEvent(input, { receivedAt: RECEIVED_AT }, limits)
          if (result.ok) events.push(result.event)
        }
        assert.deepEqual(decodeEvents(encodeEvents(events)), events)
      }),
      { numRuns: NUM_RUNS },
    )
  })
})
