import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { DedupCache } from '../../../src/dedup/cache.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

test('a key is seen once added, until its window ends', () => {
  const cache = new DedupCache(10, 1000)
  assert.equal(cache.has('a', 0), false)
  cache.add('a', 0)
  assert.equal(cache.has('a', 999), true)
  assert.equal(cache.has('a', 1000), false, 'expired at the end of the window')
  cache.add('a', 1000)
  assert.equal(cache.has('a', 1500), true, 'added again: a fresh window')
})

test('the oldest key goes first when the cache is full', () => {
  const cache = new DedupCache(3, 60_000)
  for (const key of ['a', 'b', 'c', 'd']) cache.add(key, 0)
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((k) => cache.has(k, 1)),
    [false, true, true, true],
  )
  assert.equal(cache.size, 3)
})

test('a flood of unique keys keeps the cache at its bound, in entries and in heap', () => {
  const capacity = 50_000
  const cache = new DedupCache(capacity, 86_400_000)
  const key = (i: number) => `flood-${i.toString(36).padStart(12, '0')}-0000-0000-000000000000`
  for (let i = 0; i < capacity; i++) cache.add(key(i), i)
  gc()
  const full = process.memoryUsage().heapUsed
  for (let i = capacity; i < 10 * capacity; i++) cache.add(key(i), i)
  gc()
  const after = process.memoryUsage().heapUsed
  assert.equal(cache.size, capacity)
  assert.equal(cache.has(key(0), 0), false)
  assert.equal(cache.has(key(10 * capacity - 1), 0), true)
  // 9 × capacity more keys went through: keeping them would take ~40 MiB more; the heap stays put.
  assert.ok(after - full < 4 * 1024 * 1024, `heap grew by ${((after - full) / 1048576).toFixed(1)} MiB`)
})

test('capacity 0 remembers nothing', () => {
  const cache = new DedupCache(0, 1000)
  cache.add('a', 0)
  assert.equal(cache.has('a', 0), false)
  assert.equal(cache.size, 0)
})

test('a deleted key is forgotten and its slot reused without harm', () => {
  const cache = new DedupCache(2, 1000)
  cache.add('a', 0)
  cache.delete('a')
  assert.equal(cache.has('a', 0), false)
  cache.add('b', 0)
  cache.add('c', 0)
  cache.add('d', 0)
  assert.deepEqual(
    ['b', 'c', 'd'].map((k) => cache.has(k, 0)),
    [false, true, true],
  )
})

test('bad sizes are refused', () => {
  assert.throws(() => new DedupCache(-1, 1000), RangeError)
  assert.throws(() => new DedupCache(1.5, 1000), RangeError)
  assert.throws(() => new DedupCache(1, 0), RangeError)
})
