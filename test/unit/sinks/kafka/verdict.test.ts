import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  AuthenticationError,
  MultipleErrors,
  NetworkError,
  TimeoutError,
  UserError,
} from '@platformatic/kafka'
import { isSpillwayError } from '../../../../src/errors.ts'
import {
  AUTH_RETRY_MS,
  judge,
  partitionResults,
  REFUSED_CODES,
  retryVerdict,
} from '../../../../src/sinks/kafka/verdict.ts'
import { produceFailure } from '../../connectors/kafka/failures.ts'

const refused = (code: number) => produceFailure('events', { 0: 0, 1: code })
const connectionRefused = () =>
  new MultipleErrors('produce failed 3 times.', [
    new NetworkError('Connection to 127.0.0.1:9092 failed.', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { code: 'ECONNREFUSED' }),
    }),
  ])

const TABLE: [what: string, error: unknown, expected: ReturnType<typeof judge>][] = [
  ['MESSAGE_TOO_LARGE', refused(10), 'refused'],
  ['RECORD_LIST_TOO_LARGE', refused(18), 'refused'],
  ['INVALID_RECORD', refused(87), 'refused'],
  ['CORRUPT_MESSAGE', refused(2), 'refused'],
  ['two partitions refused', produceFailure('events', { 0: 10, 1: 87 }), 'refused'],
  ['INVALID_TIMESTAMP: a clock to fix, would refuse every event alike', refused(32), 'retry'],
  ['LEADER_NOT_AVAILABLE', refused(5), 'retry'],
  [
    'NOT_LEADER_OR_FOLLOWER, retried by the client, still failing',
    produceFailure('events', { 0: 6 }, 2),
    'retry',
  ],
  ['NOT_ENOUGH_REPLICAS', refused(19), 'retry'],
  ['NOT_ENOUGH_REPLICAS_AFTER_APPEND', refused(20), 'retry'],
  ['REQUEST_TIMED_OUT', refused(7), 'retry'],
  ['UNKNOWN_TOPIC_OR_PARTITION (deleted: created again)', refused(3), 'retry'],
  ['KAFKA_STORAGE_ERROR', refused(56), 'retry'],
  ['OUT_OF_ORDER_SEQUENCE_NUMBER', refused(45), 'retry'],
  ['UNKNOWN_PRODUCER_ID', refused(59), 'retry'],
  ['POLICY_VIOLATION', refused(44), 'retry'],
  ['a code this client does not know', Object.assign(new Error('?'), { apiId: 'SOMETHING_NEW' }), 'retry'],
  ['refused data beside a retriable failure', produceFailure('events', { 0: 10, 1: 19 }), 'retry'],
  ['TOPIC_AUTHORIZATION_FAILED', refused(29), 'auth'],
  ['CLUSTER_AUTHORIZATION_FAILED', refused(31), 'auth'],
  ['TRANSACTIONAL_ID_AUTHORIZATION_FAILED', refused(53), 'auth'],
  ['SASL_AUTHENTICATION_FAILED', refused(58), 'auth'],
  ['UNSUPPORTED_SASL_MECHANISM', refused(33), 'auth'],
  ['SASL refused at connect', new AuthenticationError('SASL authentication failed.'), 'auth'],
  ['auth beside refused data', produceFailure('events', { 0: 10, 1: 29 }), 'auth'],
  ['connection refused', connectionRefused(), 'retry'],
  ['request timed out (client side)', new TimeoutError('Request timed out', { canRetry: true }), 'retry'],
  ['the client is closed', new NetworkError('Client is closed.', { canRetry: false, closed: true }), 'retry'],
  ['a bug of ours (UserError)', new UserError('Failed to serialize a message.'), 'retry'],
  ['a plain Error', new Error('boom'), 'retry'],
  ['not an Error', 'boom', 'retry'],
]

test('Kafka failures map to refused (dead-letter topic), auth (retry, paused) or retry', () => {
  for (const [what, error, expected] of TABLE) {
    assert.equal(judge(error), expected, what)
  }
})

test('every refused code is a data problem Kafka names', () => {
  assert.deepEqual([...REFUSED_CODES].sort(), [
    'CORRUPT_MESSAGE',
    'INVALID_RECORD',
    'MESSAGE_TOO_LARGE',
    'RECORD_LIST_TOO_LARGE',
  ])
})

test("partitionResults reads which partitions of the topic were written and which were refused, by Kafka's name", () => {
  const results = partitionResults(produceFailure('events', { 0: 0, 1: 10, 2: 19 }, 1), 'events')
  assert.deepEqual(results.get(0), {})
  assert.equal(results.get(1)?.error, 'MESSAGE_TOO_LARGE')
  assert.equal(results.get(2)?.error, 'NOT_ENOUGH_REPLICAS')
  assert.equal(results.size, 3)
  assert.equal(partitionResults(produceFailure('events', { 0: 10 }), 'other').size, 0)
  assert.equal(partitionResults(connectionRefused(), 'events').size, 0, 'no answer: nothing known')
  const unknown = Object.assign(new Error('?'), {
    response: { responses: [{ name: 'events', partitionResponses: [{ index: 0, errorCode: 9999 }] }] },
  })
  assert.equal(partitionResults(unknown, 'events').get(0)?.error, 'error code 9999')
})

test('a retry verdict names the brokers and the failure, never parses it', () => {
  const verdict = retryVerdict('kafka', '127.0.0.1:9092', connectionRefused())
  assert.equal(verdict.kind, 'retry')
  assert.ok(isSpillwayError(verdict.error, 'SPW_ERR_SINK_UNAVAILABLE'))
  assert.equal(
    verdict.error.message,
    'kafka: Kafka at 127.0.0.1:9092 failed: Connection to 127.0.0.1:9092 failed. (ECONNREFUSED)',
  )
  assert.equal((verdict as { afterMs?: number }).afterMs, undefined)
  const notEnough = retryVerdict('kafka', 'b:9092', refused(19))
  assert.match(
    notEnough.error.message,
    /NOT_ENOUGH_REPLICAS: Messages are rejected since there are fewer in-sync replicas/,
  )
})

test('credentials or rights refused: a retry after a pause, saying what to fix', () => {
  for (const error of [refused(29), new AuthenticationError('SASL authentication failed.')]) {
    const verdict = retryVerdict('kafka', 'b:9093', error)
    assert.equal(verdict.kind, 'retry')
    assert.equal((verdict as { afterMs?: number }).afterMs, AUTH_RETRY_MS)
    assert.match(
      verdict.error.message,
      /refused the credentials or the rights.*kafkaSasl, kafkaUsername, kafkaPassword/,
    )
  }
})
