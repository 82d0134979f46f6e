import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSpillwayError } from '../../../../src/errors.ts'
import {
  MAX_REASON_CHARS,
  parseRetryAfter,
  verdictForAnswer,
  verdictForError,
} from '../../../../src/sinks/http/verdict.ts'

const NOW = Date.parse('2026-11-23T12:00:00Z')
const where = 'http://receiver.test/ingest'

test('status → verdict', () => {
  const table: [status: number, kind: 'delivered' | 'retry' | 'permanent'][] = [
    [200, 'delivered'],
    [201, 'delivered'],
    [202, 'delivered'],
    [204, 'delivered'],
    [100, 'retry'],
    [301, 'retry'],
    [302, 'retry'],
    [304, 'retry'],
    [400, 'permanent'],
    [401, 'permanent'],
    [403, 'permanent'],
    [404, 'permanent'],
    [408, 'retry'],
    [409, 'permanent'],
    [413, 'permanent'],
    [415, 'permanent'],
    [422, 'permanent'],
    [429, 'retry'],
    [499, 'permanent'],
    [500, 'retry'],
    [501, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [504, 'retry'],
    [599, 'retry'],
  ]
  for (const [status, kind] of table) {
    const verdict = verdictForAnswer('http', where, { status, body: 'nope' }, NOW)
    assert.equal(verdict.kind, kind, `HTTP ${status}`)
    if (verdict.kind === 'permanent') assert.ok(isSpillwayError(verdict.error, 'SPW_ERR_SINK_REJECTED'))
    if (verdict.kind === 'retry') assert.ok(isSpillwayError(verdict.error, 'SPW_ERR_SINK_UNAVAILABLE'))
  }
})

test('network errors → retry, naming the code', () => {
  const errors: [string, Error][] = [
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })],
    ['ECONNRESET', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['ECONNRESET', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
    ['EPIPE', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })],
    ['ETIMEDOUT', Object.assign(new Error('no answer within 10 ms'), { code: 'ETIMEDOUT' })],
    ['ENOTFOUND', Object.assign(new Error('getaddrinfo ENOTFOUND nowhere'), { code: 'ENOTFOUND' })],
    ['CERT_HAS_EXPIRED', Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' })],
  ]
  for (const [code, error] of errors) {
    const verdict = verdictForError('http', where, error)
    assert.equal(verdict.kind, 'retry', code)
    assert.ok(verdict.kind === 'retry' && verdict.error.message.includes(code), verdict.kind)
    assert.ok(verdict.kind === 'retry' && verdict.afterMs === undefined)
  }
  assert.equal(verdictForError('http', where, 'a string').kind, 'retry')
})

test('Retry-After forms → afterMs', () => {
  const table: [value: string | undefined, ms: number | undefined][] = [
    [undefined, undefined],
    ['0', 0],
    ['1', 1000],
    [' 120 ', 120_000],
    ['Mon, 23 Nov 2026 12:00:30 GMT', 30_000],
    ['Monday, 23-Nov-26 12:01:00 GMT', 60_000],
    ['Mon Nov 23 12:00:05 2026 GMT', 5000],
    ['Mon, 23 Nov 2026 11:00:00 GMT', 0],
    ['', undefined],
    ['soon', undefined],
    ['-5', undefined],
    ['1.5', undefined],
    ['99999999999999999999', undefined],
  ]
  for (const [value, ms] of table) assert.equal(parseRetryAfter(value, NOW), ms, JSON.stringify(value))
})

test('Retry-After is honoured on 429, 503 and 408 and ignored on a refusal', () => {
  for (const status of [408, 429, 503]) {
    const verdict = verdictForAnswer('http', where, { status, retryAfter: '7' }, NOW)
    assert.deepEqual(verdict.kind === 'retry' && verdict.afterMs, 7000, `HTTP ${status}`)
  }
  const date = verdictForAnswer(
    'http',
    where,
    { status: 429, retryAfter: 'Mon, 23 Nov 2026 12:00:02 GMT' },
    NOW,
  )
  assert.equal(date.kind === 'retry' && date.afterMs, 2000)
  const garbage = verdictForAnswer('http', where, { status: 503, retryAfter: 'later' }, NOW)
  assert.ok(garbage.kind === 'retry' && !('afterMs' in garbage), 'no afterMs: the backoff decides')
  const redirect = verdictForAnswer('http', where, { status: 302, retryAfter: '7' }, NOW)
  assert.ok(redirect.kind === 'retry' && !('afterMs' in redirect))
})

test("a refusal's error carries the status and the receiver's body, truncated", () => {
  const verdict = verdictForAnswer('http', where, { status: 400, body: '{"error":"poison"}' }, NOW)
  assert.equal(verdict.kind, 'permanent')
  assert.ok(verdict.kind === 'permanent')
  assert.equal(
    verdict.error.message,
    'http: http://receiver.test/ingest refused the batch: HTTP 400 Bad Request: {"error":"poison"}',
  )
  const long = verdictForAnswer('http', where, { status: 422, body: 'x'.repeat(5000) }, NOW)
  assert.ok(long.kind === 'permanent')
  assert.ok(long.error.message.length < MAX_REASON_CHARS + 200, `${long.error.message.length} chars`)
  assert.match(long.error.message, /… \(4488 more chars\)$/)
  const empty = verdictForAnswer('http', where, { status: 500, body: '  ' }, NOW)
  assert.ok(empty.kind === 'retry')
  assert.equal(
    empty.error.message,
    'http: http://receiver.test/ingest answered HTTP 500 Internal Server Error',
  )
})
