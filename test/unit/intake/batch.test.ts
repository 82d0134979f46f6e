import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { type ErrorCode, isSpillwayError } from '../../../src/errors.ts'
import { parseBatch, validateBatch } from '../../../src/intake/batch.ts'
import { CTX, LIMITS, NOW_SECONDS, RECEIVED_AT, validBody, without } from './fixtures.ts'

const MAX = 10

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value))
}

function ndjson(...lines: string[]): Buffer {
  return Buffer.from(lines.join('\n'))
}

function events(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => validBody({ event_id: `evt-${i}` }))
}

function assertThrowsCode(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  assert.throws(fn, (error) => {
    assert.ok(isSpillwayError(error, code), `expected ${code}, got ${String(error)}`)
    if (message) assert.match(error.message, message)
    return true
  })
}

describe('parseBatch shapes', () => {
  test('a JSON array is a batch', () => {
    const parsed = parseBatch(json(events(3)), false, MAX)
    assert.equal(parsed.items.length, 3)
    assert.equal(parsed.lineErrors.size, 0)
  })

  test('{"events": [...]} is a batch', () => {
    const parsed = parseBatch(json({ events: events(2) }), false, MAX)
    assert.deepEqual(parsed.items, events(2))
  })

  test('a string body is read like a Buffer, and a UTF-8 BOM is ignored', () => {
    assert.equal(parseBatch(JSON.stringify(events(2)), false, MAX).items.length, 2)
    assert.equal(parseBatch(`\ufeff${JSON.stringify(events(2))}`, false, MAX).items.length, 2)
  })

  test('"events" that is not an array is rejected naming the field', () => {
    assertThrowsCode(
      () => parseBatch(json({ events: {} }), false, MAX),
      'SPW_ERR_INTAKE_INVALID',
      /"events" must be an array/,
    )
  })

  test('an object of another shape is rejected naming its keys', () => {
    assertThrowsCode(
      () => parseBatch(json({ batch: events(1) }), false, MAX),
      'SPW_ERR_INTAKE_INVALID',
      /got an object with keys "batch"$/,
    )
    assertThrowsCode(
      () => parseBatch(json({ events: events(1), sent_at: 1 }), false, MAX),
      'SPW_ERR_INTAKE_INVALID',
      /keys "events", "sent_at"$/,
    )
    assertThrowsCode(() => parseBatch(json({}), false, MAX), 'SPW_ERR_INTAKE_INVALID', /object with no keys$/)
  })

  test('a single event sent as a batch is rejected with a hint', () => {
    assertThrowsCode(
      () => parseBatch(json(validBody()), false, MAX),
      'SPW_ERR_INTAKE_INVALID',
      /single event object; wrap it in an array or send it to POST \/events/,
    )
  })

  test('a JSON scalar is not a batch', () => {
    assertThrowsCode(() => parseBatch('42', false, MAX), 'SPW_ERR_INTAKE_INVALID', /got a number$/)
    assertThrowsCode(() => parseBatch('null', false, MAX), 'SPW_ERR_INTAKE_INVALID', /got null$/)
  })

  test('a body that is not JSON fails as a whole, naming where', () => {
    assertThrowsCode(
      () => parseBatch('[{"event_name": 1', false, MAX),
      'SPW_ERR_INTAKE_BAD_JSON',
      /^body is not valid JSON: .*position \d+/,
    )
    // For an unexpected token V8 quotes the input around it instead of a position.
    assertThrowsCode(
      () => parseBatch('[{"event_name": }]', false, MAX),
      'SPW_ERR_INTAKE_BAD_JSON',
      /^body is not valid JSON: Unexpected token '}', "\[\{"event_name": \}\]"/,
    )
  })

  test('NDJSON sent as application/json gets a hint', () => {
    const body = ndjson(JSON.stringify(validBody()), JSON.stringify(validBody()))
    assertThrowsCode(
      () => parseBatch(body, false, MAX),
      'SPW_ERR_INTAKE_BAD_JSON',
      /Content-Type: application\/x-ndjson$/,
    )
  })
})

describe('parseBatch NDJSON', () => {
  test('one event per line, blank lines and CRLF endings allowed', () => {
    const a = JSON.stringify(validBody({ event_id: 'a' }))
    const b = JSON.stringify(validBody({ event_id: 'b' }))
    const parsed = parseBatch(ndjson('', a, '   ', `${b}\r`, '', ''), true, MAX)
    assert.deepEqual(
      parsed.items.map((item) => (item as { event_id: string }).event_id),
      ['a', 'b'],
    )
    assert.equal(parsed.lineErrors.size, 0)
  })

  test('a line that is not JSON rejects that index only, naming the line', () => {
    const a = JSON.stringify(validBody({ event_id: 'a' }))
    const parsed = parseBatch(ndjson(a, '', '{"event_name": oops', a), true, MAX)
    assert.equal(parsed.items.length, 3)
    assert.equal(parsed.items[1], '{"event_name": oops')
    assert.deepEqual([...parsed.lineErrors.keys()], [1])
    assert.match(parsed.lineErrors.get(1) ?? '', /^line 3 is not valid JSON: /)
  })

  test('a line holding JSON that is not an object is left to validation', () => {
    const parsed = parseBatch(ndjson('[1,2]', '"x"'), true, MAX)
    assert.deepEqual(parsed.items, [[1, 2], 'x'])
    const { rejected } = validateBatch(parsed.items, parsed.lineErrors, CTX, LIMITS)
    assert.deepEqual(rejected, [
      { index: 0, error: 'event must be a JSON object, got an array' },
      { index: 1, error: 'event must be a JSON object, got "x"' },
    ])
  })
})

describe('parseBatch limits', () => {
  test('an empty batch is refused in every shape', () => {
    for (const [body, nd] of [
      ['', false],
      ['  \n', false],
      ['[]', false],
      ['{"events":[]}', false],
      ['', true],
      ['\n\n  \r\n', true],
    ] as const) {
      assertThrowsCode(() => parseBatch(body, nd, MAX), 'SPW_ERR_INTAKE_EMPTY_BATCH', /^batch is empty/)
    }
  })

  test('exactly maxBatchEvents events are accepted', () => {
    assert.equal(parseBatch(json(events(MAX)), false, MAX).items.length, MAX)
    assert.equal(
      parseBatch(ndjson(...events(MAX).map((e) => JSON.stringify(e))), true, MAX).items.length,
      MAX,
    )
  })

  test('more than maxBatchEvents events are refused as too many', () => {
    assertThrowsCode(
      () => parseBatch(json(events(MAX + 1)), false, MAX),
      'SPW_ERR_INTAKE_TOO_MANY_EVENTS',
      /^batch has 11 events; at most 10 are accepted in one request$/,
    )
    assertThrowsCode(
      () => parseBatch(ndjson(...events(MAX * 3).map((e) => JSON.stringify(e))), true, MAX),
      'SPW_ERR_INTAKE_TOO_MANY_EVENTS',
      /^batch has more than 10 events/,
    )
  })

  test('a body nested deeper than any valid batch is refused whole before it is parsed, naming maxDepth', () => {
    // maxDepth 8 inside metadata: {"events":[{"metadata":{…8 levels…}}]} is 12 levels in all.
    const metadata = (levels: number) => `{"a":${'['.repeat(levels)}${']'.repeat(levels)}}`
    const event = (levels: number) =>
      JSON.stringify(validBody()).replace(/"metadata":\{[^}]*\}/, `"metadata":${metadata(levels)}`)
    assert.equal(parseBatch(`{"events":[${event(8)}]}`, false, MAX, 8).items.length, 1)
    // A plain array is one level less: what the scan lets through, validation refuses by index.
    assert.equal(parseBatch(`[${event(9)}]`, false, MAX, 8).items.length, 1)
    assertThrowsCode(
      () => parseBatch(`{"events":[${event(9)}]}`, false, MAX, 8),
      'SPW_ERR_INTAKE_INVALID',
      /^body is nested more than 12 levels deep.*metadata must be nested at most 8 levels deep \(maxDepth\)/,
    )
    assertThrowsCode(
      () => parseBatch(`[${'['.repeat(5_000_000)}${']'.repeat(5_000_000)}]`, false, MAX, 8),
      'SPW_ERR_INTAKE_INVALID',
      /more than 12 levels deep/,
    )
    // NDJSON: each line is one event, so 10 levels; the limit follows maxDepth.
    assert.equal(parseBatch(ndjson(event(1), event(8)), true, MAX, 8).items.length, 2)
    assertThrowsCode(
      () => parseBatch(ndjson(event(1), event(9), event(1)), true, MAX, 8),
      'SPW_ERR_INTAKE_INVALID',
      /^line 2 is nested more than 10 levels deep/,
    )
    assert.equal(parseBatch(ndjson(event(1), event(9)), true, MAX, 20).items.length, 2)
  })

  test('invalid UTF-8 is refused whole naming the byte; a BOM is ignored in every shape', () => {
    const bad = Buffer.concat([
      json(events(1)).subarray(0, 20),
      Buffer.from([0xff]),
      json(events(1)).subarray(20),
    ])
    assertThrowsCode(
      () => parseBatch(bad, false, MAX),
      'SPW_ERR_INTAKE_BAD_ENCODING',
      /^body is not valid UTF-8: byte 20 \(0xff\)/,
    )
    assertThrowsCode(() => parseBatch(bad, true, MAX), 'SPW_ERR_INTAKE_BAD_ENCODING', /line 1/)
    const bom = Buffer.from([0xef, 0xbb, 0xbf])
    assert.equal(parseBatch(Buffer.concat([bom, json(events(2))]), false, MAX).items.length, 2)
    const lines = events(2).map((e) => JSON.stringify(e))
    const parsed = parseBatch(Buffer.concat([bom, ndjson(...lines)]), true, MAX)
    assert.equal(parsed.lineErrors.size, 0)
    assert.equal(parsed.items.length, 2)
  })

  test('the refusals map to 400 and 413', () => {
    try {
      parseBatch('[]', false, MAX)
    } catch (error) {
      assert.ok(isSpillwayError(error))
      assert.equal(error.statusCode, 400)
    }
    try {
      parseBatch(json(events(MAX + 1)), false, MAX)
    } catch (error) {
      assert.ok(isSpillwayError(error))
      assert.equal(error.statusCode, 413)
    }
  })
})

describe('validateBatch', () => {
  test('valid events are accepted and invalid ones reported by index, in order', () => {
    const items = [
      validBody({ event_id: 'a' }),
      validBody({ channel: 'fax' }),
      validBody({ event_id: 'c' }),
      7,
    ]
    const { events: accepted, rejected } = validateBatch(items, new Map(), CTX, LIMITS)
    assert.deepEqual(
      accepted.map((e) => e.event_id),
      ['a', 'c'],
    )
    assert.deepEqual(rejected, [
      { index: 1, error: 'channel must be one of web, mobile, api, email, push, got "fax"' },
      { index: 3, error: 'event must be a JSON object, got 7' },
    ])
  })

  test('NDJSON line errors become rejections at their index', () => {
    const parsed = parseBatch(
      ndjson(JSON.stringify(validBody()), 'nope', JSON.stringify(validBody({ event_id: 'z' }))),
      true,
      MAX,
    )
    const { events: accepted, rejected } = validateBatch(parsed.items, parsed.lineErrors, CTX, LIMITS)
    assert.equal(accepted.length, 2)
    assert.equal(rejected.length, 1)
    assert.equal(rejected[0].index, 1)
    assert.match(rejected[0].error, /^line 2 is not valid JSON: /)
  })

  test('an oversize event in a batch is a rejection, not a failure of the batch', () => {
    const items = [validBody({ metadata: { pad: 'x'.repeat(2000) } }), validBody()]
    const result = validateBatch(items, new Map(), CTX, { ...LIMITS, maxEventBytes: 1024 })
    assert.equal(result.events.length, 1)
    assert.match(result.rejected[0].error, /^event is larger than 1024 bytes/)
  })

  test('with an Idempotency-Key, event i gets <key>:<i>', () => {
    const items = [
      without(validBody(), 'event_id'),
      validBody({ channel: 'fax' }),
      without(validBody(), 'event_id'),
    ]
    const ctx = { receivedAt: RECEIVED_AT, idempotencyKey: 'req-1' }
    const { events: accepted } = validateBatch(items, new Map(), ctx, LIMITS)
    assert.deepEqual(
      accepted.map((e) => e.event_id),
      ['req-1:0', 'req-1:2'],
    )
  })

  test('a batch retried with the same key gets the same ids', () => {
    const items = [without(validBody(), 'event_id'), without(validBody({ user_id: 'u2' }), 'event_id')]
    const first = validateBatch(items, new Map(), { receivedAt: RECEIVED_AT, idempotencyKey: 'k' }, LIMITS)
    const retry = validateBatch(
      items,
      new Map(),
      { receivedAt: RECEIVED_AT + 60_000, idempotencyKey: 'k' },
      LIMITS,
    )
    assert.deepEqual(
      retry.events.map((e) => e.event_id),
      first.events.map((e) => e.event_id),
    )
  })

  test('identical events in one batch without keys share a content id', () => {
    const items = [without(validBody(), 'event_id'), without(validBody(), 'event_id')]
    const { events: accepted } = validateBatch(items, new Map(), CTX, LIMITS)
    assert.equal(accepted[0].event_id, accepted[1].event_id)
  })

  test('the skews of events that carried sent_at are collected', () => {
    const items = [
      validBody({ sent_at: NOW_SECONDS - 30 }),
      validBody(),
      validBody({ sent_at: NOW_SECONDS + 5 }),
    ]
    assert.deepEqual(validateBatch(items, new Map(), CTX, LIMITS).skews, [30, -5])
  })

  test('when every event is invalid, all are reported', () => {
    const { events: accepted, rejected } = validateBatch([{}, { a: 1 }], new Map(), CTX, LIMITS)
    assert.equal(accepted.length, 0)
    assert.deepEqual(rejected, [
      { index: 0, error: 'event_name is required' },
      {
        index: 1,
        error:
          'unknown field "a"; the fields are event_id, event_name, channel, campaign_id, user_id, timestamp, sent_at, tags, metadata',
      },
    ])
  })

  test('__proto__ keys in a batch body pollute nothing', () => {
    const body = `[{"__proto__":{"polluted":1}},${JSON.stringify(validBody()).replace('"metadata":{', '"metadata":{"__proto__":{"polluted":2},')}]`
    const parsed = parseBatch(body, false, MAX)
    const result = validateBatch(parsed.items, parsed.lineErrors, CTX, LIMITS)
    assert.match(result.rejected[0].error, /^unknown field "__proto__"/)
    assert.equal(result.events.length, 1)
    const metadata = result.events[0].metadata ?? {}
    assert.deepEqual(Object.getOwnPropertyDescriptor(metadata, '__proto__')?.value, { polluted: 2 })
    assert.equal(Object.getPrototypeOf(metadata), Object.prototype)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })
})
