/**
 * Rate limits shared across nodes through a real Redis: two servers, one bucket per key; and a
 * Redis outage, during which each node limits on its own instead of refusing traffic.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Redis } from 'ioredis'
import { digestOf } from '../../src/http/auth.ts'
import { eventBody } from '../helpers/events.ts'
import { postJson } from '../helpers/http.ts'
import { startTestServer } from '../helpers/in-process.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'

let redis: RedisServer
before(async () => {
  redis = await startRedis()
})
after(() => redis.stop())

const now = Math.floor(Date.now() / 1000)
const event = (id: string) => eventBody({ event_id: id, event_name: 'rlr', user_id: 'u', timestamp: now })
const apiKeys = `shared:${digestOf('key-s').toString('hex')}`

test('two nodes with one Redis share each key bucket', async (t) => {
  const options = {
    apiKeys,
    rateLimitPerSecond: 1,
    rateLimitBurst: 4,
    redisUrl: redis.url,
    redisKeyPrefix: 'rl1:',
  }
  const nodes = [await startTestServer(t, options), await startTestServer(t, options)]
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) {
    const node = nodes[i % 2]
    statuses.push((await postJson(`${node.url}/events`, event(`s${i}`), { 'x-api-key': 'key-s' })).status)
  }
  // 4 tokens for both nodes together (a node of its own would have let 3 + 3 through).
  assert.deepEqual(statuses, [202, 202, 202, 202, 429, 429])
})

test('Redis down: each node limits on its own, and shares again once Redis is back', async (t) => {
  const options = {
    apiKeys,
    rateLimitPerSecond: 1,
    rateLimitBurst: 2,
    redisUrl: redis.url,
    redisKeyPrefix: 'rl2:',
    redisTimeoutMs: 200,
  }
  const server = await startTestServer(t, options)
  const post = (id: string) => postJson(`${server.url}/events`, event(id), { 'x-api-key': 'key-s' })
  assert.equal((await post('d0')).status, 202)
  await redis.pause()
  t.after(() => redis.start().catch(() => {}))
  const during = [(await post('d1')).status, (await post('d2')).status, (await post('d3')).status]
  assert.deepEqual(during, [202, 202, 429], 'a local bucket of 2 while Redis is away; no 5xx')
  await redis.start()
  // Redis came back empty (no persistence): the node uses it again as soon as it reconnects,
  // which shows as the key's bucket appearing in Redis.
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  let shared = 0
  for (let i = 0; i < 30 && shared === 0; i++) {
    const answer = await post(`r${i}`)
    assert.ok([202, 429].includes(answer.status), `status ${answer.status}`)
    shared = await admin.exists('rl2:ratelimit:shared')
    if (shared === 0) await new Promise((r) => setTimeout(r, 200))
  }
  assert.equal(shared, 1, 'the bucket is in Redis again')
})

test('a hung Redis (SIGSTOP): after the first timeout, requests are decided locally and fast; shared again once it resumes', async (t) => {
  const options = {
    apiKeys,
    // Large enough never to refuse here: the test is about latency while Redis hangs (the ingest
    // path answers a sequential client at well over 1,000 requests/s, which a bucket of 1,000 and
    // 1,000/s ran out of).
    rateLimitPerSecond: 100_000,
    rateLimitBurst: 100_000,
    redisUrl: redis.url,
    redisKeyPrefix: 'rl3:',
    redisTimeoutMs: 1000,
  }
  const server = await startTestServer(t, options)
  const post = (id: string) => postJson(`${server.url}/events`, event(id), { 'x-api-key': 'key-s' })
  assert.equal((await post('h0')).status, 202)
  const pid = Number((await readFile(join(redis.dir, 'redis.pid'), 'utf8')).trim())
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  const resume = () => {
    if (!resumed) process.kill(pid, 'SIGCONT')
    resumed = true
  }
  t.after(resume)
  // Redis hangs for 4 s: the first request finds out (one redisTimeoutMs), the rest must not wait.
  const durations: number[] = []
  const until = Date.now() + 4000
  for (let i = 0; Date.now() < until; i++) {
    const started = performance.now()
    const answer = await post(`h${i + 1}`)
    durations.push(performance.now() - started)
    assert.equal(answer.status, 202)
  }
  resume()
  assert.ok(durations[0] < 1000 + 800, `the first request waits one timeout at most (${durations[0]} ms)`)
  const slow = durations.slice(1).filter((ms) => ms >= 200)
  assert.deepEqual(slow, [], `every later request answers in < 200 ms (of ${durations.length})`)
  assert.ok(durations.length > 20, `requests kept flowing: ${durations.length} in 4 s`)

  // Once Redis answers again, a background probe finds it and the shared bucket is used again.
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  let shared = 0
  for (let i = 0; i < 50 && shared === 0; i++) {
    await post(`hr${i}`)
    shared = await admin.exists('rl3:ratelimit:shared')
    if (shared === 0) await new Promise((r) => setTimeout(r, 200))
  }
  assert.equal(shared, 1, 'the bucket is in Redis again')
})
