import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import fc from 'fast-check'
import { ABSENT, CONFLICT, contentFingerprint, DedupCache, SAME } from '../../../src/dedup/cache.ts'
import { serializeEvent } from '../../../src/intake/serialize.ts'
import type { NormalizedEvent } from '../../../src/intake/types.ts'

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

test('with content, a held key tells the same content from another; without, any hit is the same', () => {
  const cache = new DedupCache(10, 1000, { content: true })
  assert.equal(cache.lookup('a', 1, 2, 0), ABSENT)
  cache.add('a', 0, 1, 2)
  assert.equal(cache.lookup('a', 1, 2, 10), SAME)
  assert.equal(cache.lookup('a', 1, 3, 10), CONFLICT)
  assert.equal(cache.lookup('a', 9, 2, 10), CONFLICT)
  cache.add('a', 20, 7, 7)
  assert.equal(cache.lookup('a', 1, 2, 30), SAME, 'a held key keeps the content it was added with')
  assert.equal(cache.lookup('a', 7, 7, 2000), ABSENT, 'expired')
  cache.add('a', 2000, 7, 7)
  assert.equal(cache.lookup('a', 7, 7, 2001), SAME, 'added again after it expired: the new content')
  const plain = new DedupCache(10, 1000)
  plain.add('a', 0)
  assert.equal(plain.lookup('a', 5, 5, 1), SAME)
  assert.equal(new DedupCache(0, 1000, { content: true }).lookup('a', 0, 0), ABSENT)
})

test('the content fingerprint ignores what the server sets (corrected timestamp, received_at), nothing else', () => {
  const base: NormalizedEvent = {
    event_id: 'order-42',
    tenant: 'alice',
    event_name: 'view',
    channel: 'web',
    campaign_id: null,
    user_id: 'u',
    timestamp: 1_700_000_000,
    received_at: 1_700_000_000_123,
    tags: ['a'],
    metadata: { k: 'v' },
  }
  const of = (e: NormalizedEvent, clientTimestamp = 1_700_000_000) => {
    const out = new Int32Array(2)
    // A line inside a payload, as in a batch: only its own bytes count.
    const bytes = Buffer.from(`{"x":1}\n${serializeEvent(e)}\n{"x":2}\n`)
    contentFingerprint(bytes, 8, bytes.length - 9, clientTimestamp, out, 0)
    return [...out].join(':')
  }
  const same = of(base)
  assert.equal(of({ ...base, timestamp: 1_700_000_009, received_at: 1_800_000_000_000 }), same)
  for (const other of [
    of(base, 1_700_000_001),
    of(base, 1_700_000_000 + 2 ** 32),
    of({ ...base, user_id: 'v' }),
    of({ ...base, tenant: 'bob' }),
    of({ ...base, tags: ['b'] }),
    of({ ...base, tags: [] }),
    of({ ...base, metadata: { k: 'w' } }),
    of({ ...base, metadata: null }),
    of({ ...base, campaign_id: 'c' }),
    of({ ...base, channel: 'api' }),
    of({ ...base, event_name: 'click' }),
  ]) {
    assert.notEqual(other, same)
  }
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

/** The same semantics with a Map and an array: the model the fingerprint table must match. */
class ModelCache {
  readonly #slots = new Map<string, number>()
  readonly #keys: (string | undefined)[]
  readonly #expires: number[]
  #next = 0
  readonly capacity: number
  readonly windowMs: number
  constructor(capacity: number, windowMs: number) {
    this.capacity = capacity
    this.windowMs = windowMs
    this.#keys = new Array(capacity)
    this.#expires = new Array(capacity).fill(0)
  }
  get size() {
    return this.#slots.size
  }
  has(key: string, now: number) {
    const slot = this.#slots.get(key)
    return slot !== undefined && this.#expires[slot] > now
  }
  add(key: string, now: number) {
    if (this.capacity === 0) return
    const held = this.#slots.get(key)
    if (held !== undefined) {
      this.#expires[held] = now + this.windowMs
      return
    }
    const slot = this.#next
    this.#next = (slot + 1) % this.capacity
    const evicted = this.#keys[slot]
    if (evicted !== undefined) this.#slots.delete(evicted)
    this.#keys[slot] = key
    this.#expires[slot] = now + this.windowMs
    this.#slots.set(key, slot)
  }
  delete(key: string) {
    const slot = this.#slots.get(key)
    if (slot === undefined) return
    this.#slots.delete(key)
    this.#keys[slot] = undefined
  }
}

test('any sequence of adds, deletes and lookups answers as the model does', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), key: fc.integer({ min: 0, max: 60 }), dt: fc.nat(50) }),
    fc.record({ kind: fc.constant('has' as const), key: fc.integer({ min: 0, max: 60 }), dt: fc.nat(50) }),
    fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 60 }), dt: fc.nat(50) }),
  )
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 24 }), fc.array(op, { maxLength: 400 }), (capacity, ops) => {
      const cache = new DedupCache(capacity, 500)
      const model = new ModelCache(capacity, 500)
      let now = 0
      for (const { kind, key, dt } of ops) {
        now += dt
        const k = `key-${key}`
        if (kind === 'add') {
          cache.add(k, now)
          model.add(k, now)
        } else if (kind === 'delete') {
          cache.delete(k)
          model.delete(k)
        } else {
          assert.equal(cache.has(k, now), model.has(k, now), `has(${k}) at ${now}`)
        }
        assert.equal(cache.size, model.size)
      }
      for (let key = 0; key <= 60; key++)
        assert.equal(cache.has(`key-${key}`, now), model.has(`key-${key}`, now))
    }),
    { numRuns: 500 },
  )
})
