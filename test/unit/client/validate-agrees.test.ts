/**
 * The client checks events with a browser-safe twin of the server's validator
 * (packages/client/src/validate.ts). Here both judge the same generated events and must agree on
 * the verdict and on the message, word for word; the client-only rules are tested after.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import { prepareEvent } from '../../../packages/client/src/validate.ts'
import { CHANNELS, type IntakeLimits } from '../../../src/intake/types.ts'
import { validateEvent } from '../../../src/intake/validate.ts'

const NOW_MS = 1_723_475_612_400
const NOW = Math.round(NOW_MS / 1000)
const limits: IntakeLimits = {
  maxEventBytes: 1024,
  maxStringLength: 24,
  maxTags: 4,
  maxDepth: 3,
  clockSkewSeconds: 300,
}
const ctx = { receivedAt: NOW_MS }

const valid = () => ({ event_name: 'signup', user_id: 'u1', channel: 'web', timestamp: NOW - 60 })
/** The server in this tree refuses lone surrogates and unsafe integers (hardening, issue 15): compare on them too. */
const serverChecksSurrogates = !validateEvent({ ...valid(), user_id: 'a\ud800' }, ctx, limits).ok
const serverChecksUnsafe = !validateEvent({ ...valid(), metadata: { n: 2 ** 60 } }, ctx, limits).ok

/** Mostly what the rule wants, now and then anything JSON: events that get far into the checks. */
const maybe = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 30, arbitrary: good }, { weight: 1, arbitrary: fc.jsonValue() })
const text = fc.oneof(
  { weight: 40, arbitrary: fc.string({ minLength: 1, maxLength: 26, unit: 'grapheme' }) },
  { weight: 1, arbitrary: fc.constantFrom(' ', '\t\n', '\u00a0', '') },
  { weight: serverChecksSurrogates ? 1 : 0, arbitrary: fc.string({ maxLength: 6, unit: 'binary' }) },
)
const lone = fc.constantFrom('\ud800', 'a\udfff', '\udbff\udbff', '\udc00\ud800')
const key = fc.oneof(
  { weight: 10, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: text },
  { weight: serverChecksSurrogates ? 1 : 0, arbitrary: lone },
)
const metadataValue = fc.jsonValue({ maxDepth: 5 }).map((v) => (serverChecksUnsafe ? v : safeIntegers(v)))

/** ISO-8601 strings around now, well and badly formed (issue 17: both sides parse them alike). */
const isoTimestamp = fc
  .tuple(
    fc.integer({ min: NOW - 1e6, max: NOW + 400 }),
    fc.constantFrom('Z', 'z', '+02:00', '-0530', '+01', '', '+24:00'),
    fc.constantFrom('', '.123', ',5', '.999999'),
    fc.constantFrom('T', ' ', 't'),
  )
  .map(([seconds, zone, fraction, separator]) => {
    const offset = zone === 'Z' || zone === 'z' || zone === '' || zone === '+24:00' ? 0 : zoneSeconds(zone)
    const iso = new Date((seconds + offset) * 1000).toISOString().slice(0, 19).replace('T', separator)
    return iso + fraction + zone
  })
const brokenIso = fc.constantFrom(
  '2024-02-30T10:00:00Z',
  '2024-13-01T00:00:00Z',
  '2024-08-12T24:00:00Z',
  '1969-12-31T23:59:59Z',
  '1970-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '2024-08-12',
  'yesterday',
  String(NOW),
)

function zoneSeconds(zone: string): number {
  const sign = zone[0] === '-' ? -1 : 1
  const digits = zone.slice(1).replace(':', '')
  return sign * (Number(digits.slice(0, 2)) * 3600 + Number(digits.slice(2, 4) || 0) * 60)
}

const eventLike = fc.record(
  {
    event_id: maybe(fc.oneof(fc.string({ minLength: 1, maxLength: 130 }), text)),
    event_name: maybe(text),
    user_id: maybe(text),
    channel: maybe(fc.constantFrom(...CHANNELS, 'fax', 'Web')),
    campaign_id: maybe(fc.option(text)),
    timestamp: fc.oneof(
      { weight: 20, arbitrary: fc.integer({ min: NOW - 1e6, max: NOW + 310 }) },
      { weight: 1, arbitrary: fc.integer({ min: -10, max: NOW + 400 }) },
      { weight: 1, arbitrary: fc.constantFrom(NOW * 1000, NOW * 1e6, 1.5, NOW + 301, NOW + 300, 0) },
      { weight: 1, arbitrary: fc.jsonValue().filter((v) => v !== null && typeof v !== 'string') },
      { weight: 4, arbitrary: isoTimestamp },
      { weight: 1, arbitrary: brokenIso },
    ),
    tags: maybe(fc.array(text, { maxLength: 6 })),
    metadata: maybe(fc.dictionary(key, metadataValue, { maxKeys: 6 })),
    extra: fc.jsonValue(),
  },
  { requiredKeys: ['event_name', 'user_id', 'channel', 'timestamp'] },
)

function safeIntegers(value: fc.JsonValue): fc.JsonValue {
  if (typeof value === 'number')
    return Number.isInteger(value) && !Number.isSafeInteger(value) ? value % 1000 : value
  if (Array.isArray(value)) return value.map(safeIntegers)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, safeIntegers(v as fc.JsonValue)]))
  }
  return value
}

describe('the client judges events as the server does', () => {
  test('same verdict and same message on generated events', () => {
    fc.assert(
      fc.property(eventLike, fc.integer({ min: 0, max: 19 }), (generated, dice) => {
        // What the server sees is the event through JSON text; the client gets the same value.
        const input: Record<string, unknown> = JSON.parse(JSON.stringify(generated))
        if (dice > 0) delete input['extra']
        if (dice === 1)
          delete input[['event_name', 'user_id', 'channel'][String(generated.user_id).length % 3]]
        const server = validateEvent(input, ctx, limits)
        const client = prepareEvent(input, limits, NOW_MS, () => 'generated-id')
        if (!server.ok) {
          assert.deepEqual(client, { ok: false, error: server.error })
          return
        }
        assert.equal(client.ok, true, client.ok ? '' : client.error)
        if (!client.ok) return
        const sent = JSON.parse(client.event.line)
        const e = server.event
        assert.deepEqual(
          {
            event_name: sent.event_name,
            channel: sent.channel,
            campaign_id: sent.campaign_id ?? null,
            user_id: sent.user_id,
            timestamp: sent.timestamp,
            tags: sent.tags ?? [],
            metadata: sent.metadata ?? null,
          },
          {
            event_name: e.event_name,
            channel: e.channel,
            campaign_id: e.campaign_id,
            user_id: e.user_id,
            timestamp: e.timestamp,
            tags: e.tags,
            metadata: e.metadata,
          },
        )
        if (input['event_id'] != null) assert.equal(client.event.id, e.event_id)
        else assert.equal(client.event.id, 'generated-id')
      }),
      { numRuns: 3000 },
    )
  })

  test('the size limit is counted on the stored form, to the byte', () => {
    for (let size = 700; size <= 1100; size++) {
      const padding = 'x'.repeat(size - 200)
      const input = { ...valid(), event_id: 'id-1', metadata: { padding } }
      const server = validateEvent(input, ctx, limits)
      const client = prepareEvent(input, limits, NOW_MS, () => 'unused')
      assert.equal(client.ok, server.ok, `metadata of ${padding.length} characters`)
      if (!server.ok) assert.deepEqual(client, { ok: false, error: server.error })
    }
  })
})

describe('rules of the client alone', () => {
  const prepare = (event: Record<string, unknown>) => prepareEvent(event, limits, NOW_MS, () => 'id-new')

  test('an ISO-8601 timestamp with a zone is sent as Unix seconds', () => {
    const at = (timestamp: string) => {
      const verdict = prepare({ ...valid(), timestamp })
      assert.ok(verdict.ok, verdict.ok ? '' : verdict.error)
      return JSON.parse(verdict.event.line).timestamp
    }
    assert.equal(at('2024-08-12T15:12:32Z'), NOW - 60)
    assert.equal(at('2024-08-12T15:12:32.999Z'), NOW - 60)
    assert.equal(at('2024-08-12T17:12:32+02:00'), NOW - 60)
    assert.equal(at('2024-08-12T10:12:32-0500'), NOW - 60)
  })

  test('a timestamp string that is not a date names the field and both forms; a date without a zone or that does not exist says so', () => {
    for (const timestamp of ['yesterday', '1723475552']) {
      assert.deepEqual(prepare({ ...valid(), timestamp }), {
        ok: false,
        error: `timestamp must be an integer of Unix seconds or an ISO-8601 string with a zone, got ${JSON.stringify(timestamp)}`,
      })
    }
    assert.deepEqual(prepare({ ...valid(), timestamp: '2024-08-12T15:12:32' }), {
      ok: false,
      error: 'timestamp has no time zone, got "2024-08-12T15:12:32"; add Z (UTC) or an offset such as +02:00',
    })
    assert.deepEqual(prepare({ ...valid(), timestamp: '2024-13-12T15:12:32Z' }), {
      ok: false,
      error: 'timestamp is not a real date, got "2024-13-12T15:12:32Z": there is no month 13',
    })
  })

  test('an absent timestamp is now; undefined fields are absent, as JSON would have them', () => {
    const verdict = prepare({
      event_name: 'a',
      user_id: 'u',
      channel: 'api',
      campaign_id: undefined,
      other: undefined,
    })
    assert.ok(verdict.ok)
    assert.equal(
      verdict.event.line,
      `{"event_id":"id-new","event_name":"a","channel":"api","user_id":"u","timestamp":${Math.floor(NOW_MS / 1000)}}`,
    )
  })

  test('sent_at is refused: the client stamps it when it sends', () => {
    assert.deepEqual(prepare({ ...valid(), sent_at: NOW }), {
      ok: false,
      error: 'sent_at is stamped by the client when it sends the event; leave it out',
    })
  })

  test('values JSON cannot carry are refused, naming where they are', () => {
    const cases: [unknown, string][] = [
      [undefined, 'metadata.a must be a JSON value, got nothing'],
      [Number.NaN, 'metadata.a must be a JSON value, got NaN'],
      [() => 1, 'metadata.a must be a JSON value, got a function'],
      [10n, 'metadata.a must be a JSON value, got 10n'],
    ]
    for (const [value, error] of cases) {
      assert.deepEqual(prepare({ ...valid(), metadata: { a: value } }), { ok: false, error })
    }
  })

  test('lone surrogates and unsafe integers are refused with the server’s words', () => {
    assert.deepEqual(prepare({ ...valid(), user_id: 'a\udc00b' }), {
      ok: false,
      error: 'user_id contains a lone UTF-16 surrogate; send well-formed Unicode',
    })
    assert.deepEqual(prepare({ ...valid(), metadata: { n: 2 ** 53 } }), {
      ok: false,
      error: `metadata.n is an integer beyond ±${Number.MAX_SAFE_INTEGER} (got ${2 ** 53}), which may not be stored exactly; send it as a string`,
    })
    assert.ok(prepare({ ...valid(), user_id: 'a😀b', metadata: { n: Number.MAX_SAFE_INTEGER } }).ok)
  })

  test('the line is the server’s field order and its bytes are UTF-8 bytes', () => {
    const verdict = prepare({
      ...valid(),
      metadata: { é: '😀' },
      tags: ['t'],
      campaign_id: 'c',
      event_id: 'x',
    })
    assert.ok(verdict.ok)
    assert.deepEqual(Object.keys(JSON.parse(verdict.event.line)), [
      'event_id',
      'event_name',
      'channel',
      'campaign_id',
      'user_id',
      'timestamp',
      'tags',
      'metadata',
    ])
    assert.equal(verdict.event.bytes, Buffer.byteLength(verdict.event.line))
  })
})
