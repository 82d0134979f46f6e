import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { encodeEvents } from '../../../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../../../src/intake/types.ts'
import { MAX_DATETIME, walToJsonEachRow } from '../../../../src/sinks/clickhouse/rows.ts'
import { sparseEvent } from '../../../helpers/events.ts'

/** What ClickHouse should read from one output line: the event, metadata as its JSON text or ''. */
function expectedRow(e: NormalizedEvent) {
  return { ...e, metadata: e.metadata === null ? '' : JSON.stringify(e.metadata) }
}

function rowsOf(body: Buffer): unknown[] {
  return body
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
}

test('metadata becomes a JSON string of its text; every other field passes as it is', () => {
  const events = [
    sparseEvent('a', {
      metadata: { product_id: 'prod-789', price: 129.99, nested: { deep: [1, 'two', null] } },
    }),
    sparseEvent('b', { metadata: null, campaign_id: 'cmp_1', tags: ['x', 'y'] }),
    sparseEvent('c', { metadata: {} }),
  ]
  const result = walToJsonEachRow(encodeEvents(events), { objectsAsStrings: false })
  assert.ok(result.ok)
  assert.equal(result.rows, 3)
  assert.deepEqual(rowsOf(result.body), events.map(expectedRow))
})

test('field names inside strings and inside metadata do not confuse the transform', () => {
  const events = [
    sparseEvent('x,"metadata":{"evil":1}', {
      user_id: ',"timestamp":9999999999999,"metadata":',
      event_name: 'a"b\\c',
      tags: [',"metadata":null}', '\\'],
      metadata: { metadata: { metadata: 'inner' }, ',"metadata":': '"}\\' },
    }),
  ]
  const result = walToJsonEachRow(encodeEvents(events), { objectsAsStrings: false })
  assert.ok(result.ok, JSON.stringify(result))
  assert.deepEqual(rowsOf(result.body), events.map(expectedRow))
})

test('any event round-trips: JSON.parse of each output line is the event with metadata as text', () => {
  const text = fc.string({ unit: 'binary', maxLength: 40 })
  const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small' },
      text,
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
      fc.constant(null),
      tie('object'),
      fc.array(tie('value'), { maxLength: 4 }),
    ),
    object: fc.dictionary(text, tie('value'), { maxKeys: 4 }),
  })).value
  const arbitraryEvent = fc.record({
    event_id: text,
    event_name: text,
    channel: fc.constantFrom('web', 'mobile', 'api', 'email', 'push'),
    campaign_id: fc.option(text),
    user_id: text,
    timestamp: fc.integer({ min: 1, max: MAX_DATETIME }),
    received_at: fc.integer({ min: 1, max: 2 ** 45 }),
    tags: fc.array(text, { maxLength: 4 }),
    metadata: fc.option(fc.dictionary(text, json, { maxKeys: 5 })),
  }) as fc.Arbitrary<NormalizedEvent>
  fc.assert(
    fc.property(fc.array(arbitraryEvent, { minLength: 1, maxLength: 8 }), (events) => {
      // JSON round trip first: -0 and the like come back as the WAL would give them.
      const normal = JSON.parse(JSON.stringify(events)) as NormalizedEvent[]
      const result = walToJsonEachRow(encodeEvents(normal), { objectsAsStrings: false })
      assert.ok(result.ok)
      assert.deepEqual(rowsOf(result.body), normal.map(expectedRow))
    }),
    { numRuns: 300 },
  )
})

test('objectsAsStrings passes the WAL bytes through untouched', () => {
  const ndjson = encodeEvents([sparseEvent('a', { metadata: { a: 1 } }), sparseEvent('b')])
  const result = walToJsonEachRow(ndjson, { objectsAsStrings: true })
  assert.ok(result.ok)
  assert.equal(result.body, ndjson)
  assert.equal(result.rows, 2)
})

test('a timestamp beyond DateTime (2106) is refused with its line, in both modes', () => {
  const events = [sparseEvent('ok'), sparseEvent('late', { timestamp: MAX_DATETIME + 1 }), sparseEvent('ok2')]
  for (const objectsAsStrings of [false, true]) {
    const result = walToJsonEachRow(encodeEvents(events), { objectsAsStrings })
    assert.equal(result.ok, false)
    assert.ok(!result.ok)
    assert.equal(result.line, 2)
    assert.match(result.error, /timestamp 4294967296 is outside ClickHouse's DateTime range/)
  }
  const edge = walToJsonEachRow(encodeEvents([sparseEvent('edge', { timestamp: MAX_DATETIME })]), {
    objectsAsStrings: false,
  })
  assert.ok(edge.ok, 'the last second of 2106-02-07 fits')
})

test('empty input and blank lines give no rows', () => {
  assert.deepEqual(walToJsonEachRow(Buffer.alloc(0), { objectsAsStrings: false }), {
    ok: true,
    body: Buffer.alloc(0),
    rows: 0,
  })
  const lines = Buffer.concat([Buffer.from('\n'), encodeEvents([sparseEvent('a')]), Buffer.from('\n')])
  const result = walToJsonEachRow(lines, { objectsAsStrings: false })
  assert.ok(result.ok)
  assert.equal(result.rows, 1)
})

test('a line that is not a WAL event is refused, not passed on', () => {
  const result = walToJsonEachRow(Buffer.from('{"foo":1}\n'), { objectsAsStrings: false })
  assert.deepEqual(result, { ok: false, line: 1, error: 'no "timestamp" field' })
})

test('metadata made only of quotes and backslashes (worst-case growth) fits the output', () => {
  const events = Array.from({ length: 50 }, (_, i) =>
    sparseEvent(`q${i}`, { metadata: { ['"\\'.repeat(200)]: '\\"'.repeat(300) } }),
  )
  const result = walToJsonEachRow(encodeEvents(events), { objectsAsStrings: false })
  assert.ok(result.ok)
  assert.deepEqual(rowsOf(result.body), events.map(expectedRow))
})
