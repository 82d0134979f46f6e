import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isSpillwayError } from '../../../src/errors.ts'
import { decodeEvents, encodeEvents, serializeEvent } from '../../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../../src/intake/types.ts'
import { normalizedEvent } from '../../helpers/events.ts'
import { NOW_SECONDS, RECEIVED_AT } from './fixtures.ts'

function event(overrides: Partial<NormalizedEvent> = {}): NormalizedEvent {
  return normalizedEvent({
    event_id: 'evt-1',
    timestamp: NOW_SECONDS,
    received_at: RECEIVED_AT,
    ...overrides,
  })
}

const TRICKY_STRINGS = [
  'line\nbreak',
  'carriage\r\nreturn',
  'tab\tand\u0000nul',
  'quote " and backslash \\',
  'unicode: 日本語, ünïcödé, emoji 😀👍🏽',
  'separators \u2028 \u2029',
  'lone surrogate \ud800 here',
  '',
]

describe('serializeEvent', () => {
  test('writes exactly what JSON.stringify writes for an event in field order', () => {
    const e = event()
    assert.equal(serializeEvent(e), JSON.stringify(e))
    const nulls = event({ campaign_id: null, metadata: null, tags: [] })
    assert.equal(serializeEvent(nulls), JSON.stringify(nulls))
  })

  test('writes the fixed field order whatever the object key order', () => {
    const e = event()
    const shuffled = Object.fromEntries(Object.entries(e).reverse()) as unknown as NormalizedEvent
    assert.equal(serializeEvent(shuffled), serializeEvent(e))
  })

  test('a serialised event is one line, whatever its strings hold', () => {
    for (const s of TRICKY_STRINGS) {
      const line = serializeEvent(
        event({ event_name: s, user_id: s, campaign_id: s, tags: [s], metadata: { [s]: s } }),
      )
      assert.ok(!line.includes('\n') && !line.includes('\r'), JSON.stringify(s))
      assert.deepEqual(JSON.parse(line).event_name, s)
    }
  })

  test('a tenant goes right after event_id, and only when set', () => {
    const keyed = event({ tenant: 'alice' })
    const { event_id, tenant, ...rest } = keyed
    assert.equal(serializeEvent(keyed), JSON.stringify({ event_id, tenant, ...rest }))
    assert.ok(serializeEvent(keyed).startsWith('{"event_id":"evt-1","tenant":"alice","event_name":'))
    assert.equal(serializeEvent(event({ tenant: '' })), JSON.stringify(event()))
    assert.deepEqual(decodeEvents(encodeEvents([keyed])), [keyed])
  })

  test('escapes strings exactly as JSON.stringify does', () => {
    for (const s of TRICKY_STRINGS) {
      const e = event({ event_name: s, tags: [s, s] })
      assert.equal(serializeEvent(e), JSON.stringify(e))
    }
  })
})

describe('encodeEvents / decodeEvents', () => {
  test('encodes NDJSON: one line per event, each ending in a newline', () => {
    const payload = encodeEvents([event({ event_id: 'a' }), event({ event_id: 'b' })])
    const text = payload.toString('utf8')
    assert.ok(text.endsWith('\n'))
    const lines = text.split('\n')
    assert.equal(lines.length, 3)
    assert.equal(lines[2], '')
    assert.equal(JSON.parse(lines[0]).event_id, 'a')
    assert.equal(JSON.parse(lines[1]).event_id, 'b')
  })

  test('no events encode to an empty payload and decode back to none', () => {
    assert.equal(encodeEvents([]).length, 0)
    assert.deepEqual(decodeEvents(Buffer.alloc(0)), [])
  })

  test('decode(encode(events)) gives the events back, unicode and newlines included', () => {
    const events = TRICKY_STRINGS.map((s, i) =>
      event({
        event_id: `e${i}${s}`,
        event_name: s || 'x',
        user_id: s || 'u',
        campaign_id: s,
        tags: [s, 'b'],
        metadata: { s, nested: { [s]: [s, 1, null] } },
      }),
    )
    events.push(event({ campaign_id: null, metadata: null, tags: [] }))
    assert.deepEqual(decodeEvents(encodeEvents(events)), events)
  })

  test('decoded events keep the fixed field order', () => {
    const [decoded] = decodeEvents(encodeEvents([event()]))
    assert.deepEqual(Object.keys(decoded), Object.keys(event()))
  })

  test('decode accepts a missing final newline and blank lines', () => {
    const a = serializeEvent(event({ event_id: 'a' }))
    const b = serializeEvent(event({ event_id: 'b' }))
    assert.deepEqual(
      decodeEvents(Buffer.from(`${a}\n${b}`)).map((e) => e.event_id),
      ['a', 'b'],
    )
    assert.deepEqual(
      decodeEvents(Buffer.from(`${a}\n\n${b}\n\n`)).map((e) => e.event_id),
      ['a', 'b'],
    )
  })

  test('a broken line is reported as WAL corruption naming the line', () => {
    const a = serializeEvent(event({ event_id: 'a' }))
    assert.throws(
      () => decodeEvents(Buffer.from(`${a}\n{"event_id":\n${a}\n`)),
      (error) =>
        isSpillwayError(error, 'SPW_ERR_WAL_CORRUPT') && /line 2 is not valid JSON/.test(error.message),
    )
  })

  test('a large payload round-trips', () => {
    const events = Array.from({ length: 5000 }, (_, i) =>
      event({ event_id: `e${i}`, metadata: { i, s: 'x'.repeat(i % 50) } }),
    )
    assert.deepEqual(decodeEvents(encodeEvents(events)), events)
  })
})
