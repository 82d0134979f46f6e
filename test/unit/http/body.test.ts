import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSpillwayError } from '../../../src/errors.ts'
import { parseJsonBody } from '../../../src/http/body.ts'

const body = (text: string | Buffer) => ({
  bytes: Buffer.isBuffer(text) ? text : Buffer.from(text),
  ndjson: false,
})

function refusal(fn: () => unknown): { code: string; status: number; message: string } {
  try {
    fn()
  } catch (error) {
    assert.ok(isSpillwayError(error), String(error))
    return { code: error.code, status: error.statusCode, message: error.message }
  }
  assert.fail('expected a refusal')
}

test('a UTF-8 BOM before a single event is dropped, as on the batch routes', () => {
  const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')])
  assert.deepEqual(parseJsonBody(body(bytes)), { a: 1 })
})

test('invalid UTF-8 is a 400 naming the byte', () => {
  const answer = refusal(() => parseJsonBody(body(Buffer.from([0x7b, 0x22, 0xfe, 0x22, 0x7d]))))
  assert.deepEqual(answer, {
    code: 'SPW_ERR_INTAKE_BAD_ENCODING',
    status: 400,
    message: 'body is not valid UTF-8: byte 2 (0xfe); send UTF-8 JSON',
  })
})

test('nesting follows maxDepth: the metadata levels plus the event and metadata objects', () => {
  const event = (levels: number) => `{"metadata":{"a":${'['.repeat(levels)}${']'.repeat(levels)}}}`
  assert.ok(parseJsonBody(body(event(8))))
  const answer = refusal(() => parseJsonBody(body(event(9))))
  assert.equal(answer.status, 400)
  assert.equal(
    answer.message,
    'body is nested more than 10 levels deep, deeper than any valid event: metadata must be nested at most 8 levels deep (maxDepth)',
  )
  assert.ok(parseJsonBody(body(event(20)), 20))
  assert.match(
    refusal(() => parseJsonBody(body(event(3)), 2)).message,
    /more than 4 levels.*at most 2 levels/,
  )
})

test('a body that is not JSON still says so', () => {
  assert.match(refusal(() => parseJsonBody(body('{"a":'))).message, /^body is not valid JSON: /)
  assert.match(refusal(() => parseJsonBody(body(''))).message, /^body is empty/)
})
