import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type ClickHouseAnswer, DATA_CODES } from '../../../../src/connectors/clickhouse/errors.ts'
import { isSpillwayError } from '../../../../src/errors.ts'
import {
  judge,
  THROTTLE_MS,
  verdictForAnswer,
  verdictForError,
} from '../../../../src/sinks/clickhouse/verdict.ts'

/** An answer as 18.16 writes it (no code header) or as later servers do (header + new text). */
const old = (status: number, code: number, message = 'something'): ClickHouseAnswer => ({
  status,
  body: `Code: ${code}, e.displayText() = DB::Exception: ${message}, e.what() = DB::Exception\n`,
})
const modern = (status: number, code: number, message = 'something'): ClickHouseAnswer => ({
  status,
  codeHeader: String(code),
  body: `Code: ${code}. DB::Exception: ${message}. (NAME) (version 24.3.1.1)\n`,
})

const TABLE: [what: string, answer: ClickHouseAnswer, expected: ReturnType<typeof judge>][] = [
  ['200 Ok', { status: 200, body: '' }, 'delivered'],
  ['204', { status: 204 }, 'delivered'],
  [
    'CANNOT_PARSE_ESCAPE_SEQUENCE (a lone surrogate, 18.16)',
    old(400, 25, 'Cannot parse escape sequence'),
    'permanent',
  ],
  ['CANNOT_PARSE_INPUT_ASSERTION_FAILED', old(500, 27), 'permanent'],
  ['CANNOT_PARSE_TEXT', modern(400, 6), 'permanent'],
  ['CANNOT_PARSE_DATETIME', modern(400, 41), 'permanent'],
  ['CANNOT_PARSE_NUMBER', old(500, 72), 'permanent'],
  ['INCORRECT_DATA', modern(400, 117), 'permanent'],
  ['TOO_LARGE_STRING_SIZE', old(500, 131), 'permanent'],
  ['VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE', modern(400, 321), 'permanent'],
  ['CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN', modern(400, 349), 'permanent'],
  [
    'TOO_MANY_PARTS for partitions in one insert block (a property of the batch: halve it)',
    modern(500, 252, 'Too many partitions for single INSERT block (more than 100)'),
    'permanent',
  ],
  [
    'TOO_MANY_PARTS (merges behind)',
    old(500, 252, 'Too many parts (300). Merges are processing significantly slower than inserts'),
    'throttle',
  ],
  ['MEMORY_LIMIT_EXCEEDED', old(500, 241, 'Memory limit (for query) exceeded'), 'throttle'],
  ['TOO_MANY_SIMULTANEOUS_QUERIES', modern(500, 202), 'throttle'],
  ['TYPE_MISMATCH: a table that does not match, every row alike', modern(400, 53), 'retry'],
  ['CANNOT_CONVERT_TYPE', old(500, 70), 'retry'],
  ['UNKNOWN_TABLE (dropped: created again)', old(404, 60, "Table default.events doesn't exist."), 'retry'],
  ['UNKNOWN_DATABASE', modern(404, 81), 'retry'],
  ['NO_SUCH_COLUMN_IN_TABLE', modern(400, 16), 'retry'],
  ['UNKNOWN_USER', old(401, 192), 'retry'],
  ['WRONG_PASSWORD', old(401, 193), 'retry'],
  ['AUTHENTICATION_FAILED', modern(401, 516), 'retry'],
  ['ACCESS_DENIED', modern(403, 497), 'retry'],
  ['READONLY', modern(500, 164), 'retry'],
  ['SYNTAX_ERROR (ours, not the data)', old(500, 62), 'retry'],
  ['TIMEOUT_EXCEEDED', modern(500, 159), 'retry'],
  ['SOCKET_TIMEOUT', old(500, 209), 'retry'],
  ['NETWORK_ERROR', old(500, 210), 'retry'],
  ['TABLE_IS_READ_ONLY', modern(500, 242), 'retry'],
  ['NOT_ENOUGH_SPACE', modern(500, 243), 'retry'],
  ['ABORTED (server shutting down)', modern(500, 236), 'retry'],
  ['an unknown code', modern(500, 99999), 'retry'],
  ['502 from a proxy, no code', { status: 502, body: '<html>Bad Gateway</html>' }, 'retry'],
  ['503 no code', { status: 503 }, 'retry'],
  ['429 no code', { status: 429 }, 'throttle'],
  ['408 no code', { status: 408 }, 'retry'],
  ['401 from a proxy, no code', { status: 401 }, 'retry'],
  ['404 wrong path, no code', { status: 404, body: 'There is no handle /x' }, 'retry'],
  [
    '413 from a proxy, no code (halving is the remedy)',
    { status: 413, body: 'Request Entity Too Large' },
    'permanent',
  ],
  ['400 from a proxy, no code', { status: 400, body: 'Bad Request' }, 'permanent'],
  ['301 redirect', { status: 301 }, 'retry'],
]

test('every answer maps to its verdict (the table)', () => {
  for (const [what, answer, expected] of TABLE) assert.equal(judge(answer), expected, what)
})

test('every data code is permanent in both message formats', () => {
  for (const code of DATA_CODES.keys()) {
    assert.equal(judge(old(500, code)), 'permanent', `18.16 code ${code}`)
    assert.equal(judge(modern(400, code)), 'permanent', `modern code ${code}`)
  }
})

test('verdicts carry the server message, the code name, and a throttle delay', () => {
  const refused = verdictForAnswer(
    'clickhouse',
    'http://ch:8123',
    old(400, 25, 'Cannot parse escape sequence'),
  )
  assert.equal(refused.kind, 'permanent')
  assert.ok(refused.kind === 'permanent' && isSpillwayError(refused.error, 'SPW_ERR_SINK_REJECTED'))
  assert.match(
    refused.error.message,
    /^clickhouse: http:\/\/ch:8123 refused the rows: HTTP 400 \(CANNOT_PARSE_ESCAPE_SEQUENCE\): Code: 25/,
  )
  const throttled = verdictForAnswer('clickhouse', 'http://ch:8123', old(500, 252, 'Too many parts (300)'))
  assert.deepEqual(
    throttled.kind === 'retry' && {
      afterMs: throttled.afterMs,
      retryable: isSpillwayError(throttled.error, 'SPW_ERR_SINK_UNAVAILABLE'),
    },
    { afterMs: THROTTLE_MS, retryable: true },
  )
  assert.match(throttled.kind === 'retry' ? throttled.error.message : '', /HTTP 500 \(TOO_MANY_PARTS\)/)
  const retry = verdictForAnswer('clickhouse', 'http://ch:8123', modern(500, 159))
  assert.equal(retry.kind === 'retry' && retry.afterMs, undefined)
  assert.equal(verdictForAnswer('clickhouse', 'x', { status: 200 }).kind, 'delivered')
  const long = verdictForAnswer('clickhouse', 'x', old(500, 27, 'y'.repeat(5000)))
  assert.ok(long.kind === 'permanent' && long.error.message.length < 700, 'the message is bounded')
})

test('no answer at all is a retry naming the system error', () => {
  const error = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
  const verdict = verdictForError('clickhouse', 'http://127.0.0.1:1', error)
  assert.equal(verdict.kind, 'retry')
  assert.match(
    verdict.kind === 'retry' ? verdict.error.message : '',
    /no answer from http:\/\/127\.0\.0\.1:1 \(connect ECONNREFUSED/,
  )
  const reset = verdictForError(
    'clickhouse',
    'x',
    Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
  )
  assert.match(reset.kind === 'retry' ? reset.error.message : '', /ECONNRESET: socket hang up/)
})
