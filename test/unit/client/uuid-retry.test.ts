import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { backoffDelay, rateLimitWaitMs, retryAfterMs } from '../../../packages/client/src/retry.ts'
import { uuidv7 } from '../../../packages/client/src/uuid.ts'

describe('uuidv7', () => {
  test('version 7, RFC variant, the millisecond in the first 48 bits', () => {
    const at = Date.UTC(2026, 11, 4, 12, 0, 0, 123)
    const id = uuidv7(at)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.equal(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16), at)
  })

  test('ids made in one millisecond, or after the clock stepped back, still sort in the order made', () => {
    const at = Date.now() + 10_000
    const made = [uuidv7(at)]
    for (let i = 0; i < 5000; i++) made.push(uuidv7(at))
    made.push(uuidv7(at - 5000))
    assert.deepEqual([...made].sort(), made)
    assert.equal(new Set(made).size, made.length)
  })
})

describe('backoff and the server’s word on when', () => {
  const options = { minMs: 100, maxMs: 1000, maxServerDelayMs: 60_000 }

  test('equal jitter: between half and all of the capped doubling', () => {
    assert.equal(
      backoffDelay(1, options, () => 0),
      50,
    )
    assert.equal(
      backoffDelay(1, options, () => 1),
      100,
    )
    assert.equal(
      backoffDelay(3, options, () => 0),
      200,
    )
    assert.equal(
      backoffDelay(3, options, () => 1),
      400,
    )
    assert.equal(
      backoffDelay(10, options, () => 0),
      500,
    )
    assert.equal(
      backoffDelay(10, options, () => 1),
      1000,
    )
    assert.equal(
      backoffDelay(500, options, () => 1),
      1000,
    )
  })

  test('Retry-After as seconds or as an HTTP date', () => {
    const now = Date.UTC(2026, 0, 1)
    assert.equal(retryAfterMs('3', now), 3000)
    assert.equal(retryAfterMs(' 0 ', now), 0)
    assert.equal(retryAfterMs(new Date(now + 5000).toUTCString(), now), 5000)
    assert.equal(retryAfterMs(new Date(now - 5000).toUTCString(), now), 0)
    assert.equal(retryAfterMs('soon', now), undefined)
    assert.equal(retryAfterMs(null, now), undefined)
  })

  test('RateLimit-*: wait for the reset only when nothing remains; the combined header too', () => {
    const headers = (h: Record<string, string>) => new Headers(h)
    assert.equal(rateLimitWaitMs(headers({ 'ratelimit-remaining': '0', 'ratelimit-reset': '2' })), 2000)
    assert.equal(rateLimitWaitMs(headers({ 'ratelimit-remaining': '3', 'ratelimit-reset': '2' })), 0)
    assert.equal(rateLimitWaitMs(headers({ 'ratelimit-reset': '2' })), 0)
    assert.equal(rateLimitWaitMs(headers({ ratelimit: 'limit=10, remaining=0, reset=4' })), 4000)
    assert.equal(rateLimitWaitMs(headers({ ratelimit: '"default";r=0;t=7' })), 7000)
    assert.equal(rateLimitWaitMs(headers({})), 0)
  })
})
