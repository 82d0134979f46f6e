import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSpillwayError } from '../../../../src/errors.ts'
import { EventRowError } from '../../../../src/sinks/duckdb/event-chunks.ts'
import { isFatalError, verdictFor } from '../../../../src/sinks/duckdb/verdict.ts'
import type { Verdict } from '../../../../src/sinks/sink.ts'

const CASES: [Error, 'permanent' | 'retry'][] = [
  [new Error('Failed to append: NOT NULL constraint failed: events.user_id'), 'permanent'],
  [new Error('Constraint Error: Duplicate key "sink: duckdb" violates primary key constraint'), 'permanent'],
  [new Error("Conversion Error: Could not convert string 'x' to INT32"), 'permanent'],
  [new Error('Invalid Input Error: Invalid unicode (byte sequence mismatch) detected'), 'permanent'],
  [new Error('Out of Range Error: Overflow in multiplication'), 'permanent'],
  [new Error('bigint out of int64 range'), 'permanent'],
  [
    new RangeError('The number 1.5 cannot be converted to a BigInt because it is not an integer'),
    'permanent',
  ],
  [new EventRowError('event 3 (event_id a): user_id must be a string'), 'permanent'],
  [new Error('IO Error: Could not write file "x.duckdb.wal": No space left on device'), 'retry'],
  [
    new Error('Out of Memory Error: could not allocate block of size 256.0 KiB (1.0 GiB/1.0 GiB used)'),
    'retry',
  ],
  [new Error('IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held'), 'retry'],
  [new Error('TransactionContext Error: Catalog write-write conflict on create with "events"'), 'retry'],
  [new Error('FATAL Error: Failed to create checkpoint because of error: Cannot open file'), 'retry'],
  [new Error('INTERRUPT Error: Interrupted!'), 'retry'],
  [new Error('something nobody has seen before'), 'retry'],
]

test('DuckDB errors map to verdicts: refused data is permanent, everything else is retried', () => {
  for (const [error, kind] of CASES) {
    const verdict = verdictFor('duckdb', error)
    assert.equal(verdict.kind, kind, error.message)
    const code = kind === 'permanent' ? 'SPW_ERR_SINK_REJECTED' : 'SPW_ERR_SINK_UNAVAILABLE'
    const refused = verdict as Exclude<Verdict, { kind: 'delivered' }>
    assert.ok(isSpillwayError(refused.error, code), error.message)
    assert.equal(refused.error.cause, error)
  }
})

test('fatal errors are recognised (the database must be reopened)', () => {
  assert.equal(isFatalError(new Error('FATAL Error: database has been invalidated')), true)
  assert.equal(isFatalError(new Error('IO Error: disk full')), false)
})
