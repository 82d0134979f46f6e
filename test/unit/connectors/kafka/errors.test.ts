import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MultipleErrors } from '@platformatic/kafka'
import { describe, MAX_REASON_CHARS } from '../../../../src/connectors/kafka/errors.ts'
import { produceFailure } from './failures.ts'

test('describe names each distinct failure once, bounded', () => {
  assert.equal(
    describe(produceFailure('events', { 0: 10 }, 2)),
    'MESSAGE_TOO_LARGE: The request included a message larger than the max message size the server will accept.',
  )
  const many = new MultipleErrors(
    'x',
    Array.from({ length: 50 }, (_, i) => new Error(`failure number ${i} `.repeat(5))),
  )
  assert.ok(describe(many).length <= MAX_REASON_CHARS + 1)
  assert.equal(describe('text'), 'text')
})
