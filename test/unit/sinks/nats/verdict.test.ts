import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ClosedConnectionError, headers, InvalidArgumentError, type Msg } from '@nats-io/transport-node'
import { isSpillwayError } from '../../../../src/errors.ts'
import { parseAnswer } from '../../../../src/sinks/nats/publisher.ts'
import {
  judge,
  MESSAGE_TOO_LARGE,
  type PublishAnswer,
  THROTTLE_CODES,
  THROTTLE_MS,
  verdictFor,
} from '../../../../src/sinks/nats/verdict.ts'

const ack = (seq = 1, duplicate = false): PublishAnswer => ({ type: 'ack', stream: 'EVENTS', seq, duplicate })
const apiError = (errCode: number, description = 'something', status = 400): PublishAnswer => ({
  type: 'api-error',
  status,
  errCode,
  description,
})

const TABLE: [what: string, answer: PublishAnswer, expected: ReturnType<typeof judge>][] = [
  ['an ack', ack(), 'delivered'],
  ['a duplicate ack: JetStream holds that Nats-Msg-Id already', ack(7, true), 'delivered'],
  [
    'message over the stream max_msg_size (10054)',
    apiError(10054, 'message size exceeds maximum allowed'),
    'permanent',
  ],
  [
    'over the server max_payload: the client refuses to send it',
    { type: 'thrown', error: InvalidArgumentError.format('payload', 'max_payload size exceeded') },
    'permanent',
  ],
  [
    'stream full under discard new (10077 maximum messages exceeded)',
    apiError(10077, 'maximum messages exceeded', 503),
    'throttle',
  ],
  ['stream full (10077 maximum bytes exceeded)', apiError(10077, 'maximum bytes exceeded', 503), 'throttle'],
  [
    'insufficient storage resources (10047)',
    apiError(10047, 'insufficient storage resources available', 500),
    'throttle',
  ],
  ['account resource limits exceeded (10002)', apiError(10002), 'throttle'],
  ['insufficient resources (10023)', apiError(10023, 'insufficient resources', 503), 'throttle'],
  [
    'sealed stream (10109): a configuration to fix',
    apiError(10109, 'invalid operation on sealed stream'),
    'retry',
  ],
  ['expected stream does not match (10060)', apiError(10060), 'retry'],
  ['wrong last sequence (10071)', apiError(10071), 'retry'],
  [
    'duplicate message id in process (10158, clustered)',
    apiError(10158, 'duplicate message id is in process', 503),
    'retry',
  ],
  ['an unknown API error', apiError(99999, 'new in a later server', 500), 'retry'],
  [
    'no responders: no stream captures the subject, or JetStream is down or electing',
    { type: 'status', code: 503, description: 'No Responders' },
    'retry',
  ],
  ['another status', { type: 'status', code: 408, description: 'Request Timeout' }, 'retry'],
  ['no ack in time', { type: 'timeout', afterMs: 10_000 }, 'retry'],
  ['connection lost', { type: 'disconnected', reason: 'connection to nats://x lost' }, 'retry'],
  ['closed connection', { type: 'thrown', error: new ClosedConnectionError() }, 'retry'],
  ['not sent after an earlier failure', { type: 'unsent' }, 'retry'],
]

test('every answer maps to its verdict (the table)', () => {
  for (const [what, answer, expected] of TABLE) assert.equal(judge(answer), expected, what)
  assert.equal(judge(apiError(MESSAGE_TOO_LARGE)), 'permanent')
  for (const code of THROTTLE_CODES.keys()) assert.equal(judge(apiError(code)), 'throttle', `code ${code}`)
})

const ids = (n: number) => Array.from({ length: n }, (_, i) => `id-${i}`)

test('a batch is delivered only when every publish was acked (duplicates and skipped ones included)', () => {
  assert.equal(
    verdictFor('nats', 'stream S', { ids: ids(3), answers: [ack(1), ack(2, true), undefined] }).kind,
    'delivered',
  )
  assert.equal(verdictFor('nats', 'stream S', { ids: [], answers: [] }).kind, 'delivered')
  const one = verdictFor('nats', 'stream S', {
    ids: ids(3),
    answers: [ack(1), { type: 'timeout', afterMs: 5000 }, ack(3)],
  })
  assert.equal(one.kind, 'retry')
  assert.ok(one.kind === 'retry' && isSpillwayError(one.error, 'SPW_ERR_SINK_UNAVAILABLE'))
  assert.match(
    one.kind === 'retry' ? one.error.message : '',
    /^nats: 1 of 3 publishes to stream S not acked; event "id-1": no ack within 5000 ms/,
  )
})

test('a retry wins over a refusal: the batch is retried whole (acked part skipped), not halved', () => {
  const verdict = verdictFor('nats', 'stream S', {
    ids: ids(4),
    answers: [
      ack(1),
      apiError(10054, 'message size exceeds maximum allowed'),
      { type: 'status', code: 503, description: '' },
      { type: 'unsent' },
    ],
  })
  assert.equal(verdict.kind, 'retry')
  assert.match(verdict.kind === 'retry' ? verdict.error.message : '', /3 of 4 .* event "id-2": no responders/)
  assert.equal(verdict.kind === 'retry' && verdict.afterMs, undefined)
})

test('the cause is named, not the unsent publishes behind it; throttling asks for a pause', () => {
  const verdict = verdictFor('nats', 'stream S', {
    ids: ids(3),
    answers: [{ type: 'unsent' }, apiError(10077, 'maximum messages exceeded', 503), { type: 'unsent' }],
  })
  assert.equal(verdict.kind === 'retry' && verdict.afterMs, THROTTLE_MS)
  assert.match(
    verdict.kind === 'retry' ? verdict.error.message : '',
    /event "id-1": maximum messages exceeded \(err_code 10077, 503\)/,
  )
})

test('only refusals: permanent, naming the first refused event and the server reason', () => {
  const verdict = verdictFor('nats', 'stream S at nats://h:4222', {
    ids: ['a', 'big', 'c', 'huge'],
    answers: [
      ack(1),
      apiError(10054, 'message size exceeds maximum allowed'),
      ack(2),
      { type: 'thrown', error: InvalidArgumentError.format('payload', 'max_payload size exceeded') },
    ],
  })
  assert.equal(verdict.kind, 'permanent')
  assert.ok(verdict.kind === 'permanent' && isSpillwayError(verdict.error, 'SPW_ERR_SINK_REJECTED'))
  assert.equal(
    verdict.kind === 'permanent' && verdict.error.message,
    'nats: stream S at nats://h:4222 refused event "big": message size exceeds maximum allowed (err_code 10054, 400)',
  )
})

const reply = (data: string, code = 0, description = ''): Msg =>
  ({
    subject: '_INBOX.x.1.0',
    sid: 1,
    data: Buffer.from(data),
    headers: code ? headers(code, description) : undefined,
  }) as unknown as Msg

test('publish replies as the server writes them', () => {
  assert.deepEqual(parseAnswer(reply('{"stream":"EVENTS","seq":42}')), ack(42))
  assert.deepEqual(parseAnswer(reply('{"stream":"EVENTS","seq":42,"duplicate":true}')), ack(42, true))
  assert.deepEqual(
    parseAnswer(
      reply(
        '{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"","seq":0}',
      ),
    ),
    apiError(10054, 'message size exceeds maximum allowed'),
  )
  assert.deepEqual(parseAnswer(reply('', 503, 'No Responders')), {
    type: 'status',
    code: 503,
    description: 'No Responders',
  })
  assert.equal(parseAnswer(reply('not json')).type, 'status')
  assert.equal(judge(parseAnswer(reply('{"seq":1}'))), 'retry', 'an ack without a stream is not an ack')
})
