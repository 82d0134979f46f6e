import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Backoff } from '../../../src/shared/backoff.ts'

test('backoff grows exponentially up to the cap, with full jitter', () => {
  const top = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2, random: () => 0.999999 })
  assert.deepEqual(
    Array.from({ length: 6 }, () => top.next()),
    [99, 199, 399, 799, 999, 999],
  )
  const bottom = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 })
  assert.deepEqual(
    Array.from({ length: 3 }, () => bottom.next()),
    [0, 0, 0],
  )
  const real = new Backoff({ initialMs: 100, maxMs: 1000 })
  for (let i = 0; i < 50; i++) {
    const wait = real.next()
    assert.ok(wait >= 0 && wait <= 1000)
  }
})

test('without jitter the waits are the capped doubling itself', () => {
  const backoff = new Backoff({ initialMs: 200, maxMs: 1000, jitter: 'none' })
  assert.deepEqual(
    Array.from({ length: 5 }, () => backoff.next()),
    [200, 400, 800, 1000, 1000],
  )
})

test('a jitter ratio spreads each wait around the doubling, never to zero', () => {
  const low = new Backoff({ initialMs: 250, maxMs: 5000, jitter: 0.2, random: () => 0 })
  const high = new Backoff({ initialMs: 250, maxMs: 5000, jitter: 0.2, random: () => 1 })
  assert.deepEqual(
    Array.from({ length: 3 }, () => low.next()),
    [200, 400, 800],
  )
  assert.deepEqual(
    Array.from({ length: 3 }, () => high.next()),
    [300, 600, 1200],
  )
})

test("backoff uses a caller's afterMs as given, capped by maxAfterMs", () => {
  const backoff = new Backoff({ initialMs: 1, maxMs: 2, maxAfterMs: 10_000, random: () => 0.5 })
  assert.equal(backoff.next(1500), 1500)
  assert.equal(backoff.next(0), 0)
  assert.equal(backoff.next(60_000), 10_000)
  assert.equal(backoff.attempt, 3)
})

test('reset starts the next failure small again', () => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 100_000, random: () => 0.999999 })
  for (let i = 0; i < 5; i++) backoff.next()
  backoff.reset()
  assert.equal(backoff.attempt, 0)
  assert.equal(backoff.next(), 99)
})
