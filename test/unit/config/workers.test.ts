import assert from 'node:assert/strict'
import { test } from 'node:test'
import { workersOf } from '../../../src/config/derived.ts'

test('workers 0 is one per core, but one process on two cores or fewer (measured faster there)', () => {
  assert.equal(workersOf({ workers: 0 }, 1), 1)
  assert.equal(workersOf({ workers: 0 }, 2), 1)
  assert.equal(workersOf({ workers: 0 }, 4), 4)
  assert.equal(workersOf({ workers: 3 }, 2), 3, 'an explicit count is kept')
  assert.equal(workersOf({ workers: 1 }, 16), 1)
})
