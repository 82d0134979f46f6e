/**
 * The restart pause of a dying worker (src/cluster/supervisor.ts): the minimum after a worker that
 * ran long enough, doubling with each quick death after the first, capped. The supervisor's
 * processes are exercised by test/crash/worker-*.test.ts.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { failuresAfter, restartDelay } from '../../../src/cluster/supervisor.ts'

test('a worker that keeps dying waits longer each time, up to 5 s', () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7, 8].map(restartDelay),
    [100, 100, 200, 400, 800, 1600, 3200, 5000, 5000],
  )
})

test('a worker that ran more than 10 s is healthy again: its count starts over', () => {
  assert.equal(failuresAfter(0, 50), 1)
  assert.equal(failuresAfter(4, 9_000), 5)
  assert.equal(failuresAfter(4, 10_001), 0)
  assert.equal(restartDelay(failuresAfter(6, 60_000)), 100)
})
