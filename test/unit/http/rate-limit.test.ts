import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clientBucket, MAX_LOCAL_BUCKETS, RateLimiter, takeToken } from '../../../src/http/rate-limit.ts'

test('a token bucket: burst at once, then the rate; Retry-After is the wait for one token', () => {
  let bucket: { tokens: number; atMs: number } | undefined
  const at = (ms: number) => {
    const { state, decision } = takeToken(bucket, ms, 2, 3)
    bucket = state
    return decision
  }
  assert.deepEqual(at(0), { allowed: true, remaining: 2, resetSeconds: 1, retryAfterSeconds: 0 })
  assert.equal(at(0).remaining, 1)
  assert.equal(at(0).remaining, 0)
  const refused = at(0)
  assert.equal(refused.allowed, false)
  assert.equal(refused.retryAfterSeconds, 1)
  assert.equal(refused.resetSeconds, 2, '3 tokens at 2/s')
  assert.equal(at(400).allowed, false, '0.8 of a token after 400 ms')
  assert.equal(at(500).allowed, true, 'one token after 500 ms at 2/s')
  assert.equal(at(60_000).remaining, 2, 'never more than the burst')
})

test('a slow rate gives a Retry-After of several seconds', () => {
  const { state } = takeToken(undefined, 0, 0.2, 1)
  assert.equal(takeToken(state, 0, 0.2, 1).decision.retryAfterSeconds, 5)
})

test('local buckets are per client, and bounded: the least recently seen client is forgotten first', async () => {
  const limiter = new RateLimiter({ rate: 1, burst: 1 })
  assert.equal((await limiter.take('a')).allowed, true)
  assert.equal((await limiter.take('a')).allowed, false)
  assert.equal((await limiter.take('b')).allowed, true, 'another client has its own bucket')
  for (let i = 0; i < MAX_LOCAL_BUCKETS + 10; i++) await limiter.take(`ip-${i}`)
  assert.equal(limiter.localBuckets, MAX_LOCAL_BUCKETS)
  assert.equal((await limiter.take('a')).allowed, true, '"a" was evicted: a new, full bucket')
})

test('client buckets: an IPv4 address each, an IPv6 /64 each, IPv4-mapped IPv6 as IPv4', () => {
  assert.equal(clientBucket('203.0.113.7'), '203.0.113.7')
  assert.equal(clientBucket('2001:db8:1:2::1'), '2001:db8:1:2::/64')
  assert.equal(clientBucket('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64')
  assert.equal(clientBucket('2001:db8::1'), '2001:db8:0:0::/64')
  assert.equal(clientBucket('::1'), '0:0:0:0::/64')
  assert.equal(clientBucket('fe80::1%eth0'), 'fe80:0:0:0::/64')
  assert.equal(clientBucket('::ffff:198.51.100.4'), '198.51.100.4')
  assert.equal(clientBucket('64:ff9b::198.51.100.4'), '64:ff9b:0:0::/64')
  assert.equal(clientBucket('not:an:address::x::y'), 'not:an:address::x::y')
})
