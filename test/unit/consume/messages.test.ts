import assert from 'node:assert/strict'
import { test } from 'node:test'
import { readEvent, toWalLines } from '../../../src/consume/messages.ts'
import { payloadKeys } from '../../../src/intake/ndjson-keys.ts'
import { decodeEvents, serializeEvent } from '../../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../../src/intake/types.ts'
import { normalizedEvent } from '../../helpers/events.ts'
import { LIMITS, RECEIVED_AT, validBody } from '../intake/fixtures.ts'

const normalized = normalizedEvent({
  event_id: 'e-1',
  campaign_id: null,
  user_id: 'user_1',
  timestamp: 1_723_475_500,
  received_at: 1_723_475_600_000,
  tags: ['a'],
  metadata: { price: 1.5 },
})
const buf = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))

test('a normalized event is written back in the WAL form, whatever its key order', () => {
  const shuffled = Object.fromEntries(Object.entries(normalized).reverse())
  const lines = toWalLines([buf(shuffled), buf(serializeEvent(normalized))], LIMITS, RECEIVED_AT)
  assert.equal(lines.count, 2)
  assert.deepEqual(lines.refused, [])
  const line = `${serializeEvent(normalized)}\n`
  assert.equal(lines.payload.toString(), line + line)
  assert.deepEqual(payloadKeys(lines.payload).keys, ['e-1', 'e-1'])
})

test('an event in the API shape is validated as if it were POSTed, received now', () => {
  const event = readEvent(buf(validBody()), LIMITS, RECEIVED_AT)
  assert.equal(typeof event, 'object')
  assert.equal((event as NormalizedEvent).received_at, RECEIVED_AT)
  assert.equal((event as NormalizedEvent).event_id, validBody().event_id)
  assert.match(
    readEvent(buf(validBody({ channel: 'fax' })), LIMITS, RECEIVED_AT) as string,
    /channel must be one of/,
  )
})

test('what is not an event is refused with a reason naming the problem, and the rest goes on', () => {
  const cases: [unknown, RegExp][] = [
    ['{"event_id":', /not JSON/],
    ['[1,2]', /must be a JSON object/],
    ['"text"', /must be a JSON object/],
    [{ ...normalized, extra: 1 }, /unknown field "extra"/],
    [{ ...normalized, event_id: '' }, /event_id must be a string of 1 to 128/],
    [{ ...normalized, event_id: 'x'.repeat(129) }, /event_id/],
    [{ ...normalized, channel: 'fax' }, /channel must be one of/],
    [{ ...normalized, timestamp: 1.5 }, /timestamp must be an integer/],
    [{ ...normalized, received_at: '1' }, /received_at must be an integer/],
    [{ ...normalized, tags: [1] }, /tags must be an array of strings/],
    [{ ...normalized, metadata: [1] }, /metadata must be an object or null/],
    [{ ...normalized, campaign_id: 5 }, /campaign_id must be a string or null/],
    [{ ...normalized, user_id: '' }, /user_id must be a non-empty string/],
  ]
  const values = [buf(normalized), ...cases.map(([v]) => buf(v))]
  const lines = toWalLines(values, LIMITS, RECEIVED_AT)
  assert.equal(lines.count, 1)
  assert.equal(lines.refused.length, cases.length)
  lines.refused.forEach((r, i) => {
    assert.equal(r.index, i + 1)
    assert.match(r.reason, cases[i][1])
  })
  assert.deepEqual(decodeEvents(lines.payload), [normalized])
})

test("a normalized event keeps its tenant (its dedup key is the tenant's); a malformed tenant is refused", () => {
  const keyed = { ...normalized, tenant: 'alice' }
  const { payload, refused } = toWalLines(
    [buf(keyed), buf({ ...normalized, tenant: 'a/b' }), buf({ ...normalized, tenant: 7 })],
    LIMITS,
    RECEIVED_AT,
  )
  assert.equal(payload.toString(), `${serializeEvent(keyed)}\n`)
  assert.deepEqual(payloadKeys(payload).keys, [`alice/${normalized.event_id}`])
  assert.deepEqual(
    refused.map((r) => [r.index, r.reason.split(',')[0]]),
    [
      [1, 'tenant must be an API key label (1 to 64 of A-Z a-z 0-9 . _ -)'],
      [2, 'tenant must be an API key label (1 to 64 of A-Z a-z 0-9 . _ -)'],
    ],
  )
})

test('a message larger than an event may be is refused before it is parsed', () => {
  const huge = buf({ ...normalized, metadata: { blob: 'x'.repeat(LIMITS.maxEventBytes + 2048) } })
  assert.match(readEvent(huge, LIMITS, RECEIVED_AT) as string, /larger than an event may be/)
})

test('a batch without any valid message gives an empty payload', () => {
  const lines = toWalLines([buf('nope')], LIMITS, RECEIVED_AT)
  assert.equal(lines.count, 0)
  assert.equal(lines.payload.length, 0)
})
