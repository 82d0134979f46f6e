/**
 * L2 against a real Redis (started by scripts/redis.sh): atomic claims with tokens, release,
 * TTL, and a server that keeps delivering through a Redis outage and shows it.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Redis } from 'ioredis'
import { RedisDedup } from '../../src/dedup/redis.ts'
import { createLogger } from '../../src/telemetry/logger.ts'
import { eventBody } from '../helpers/events.ts'
import { destroyAgent, postJson, send } from '../helpers/http.ts'
import { startTestServer } from '../helpers/in-process.ts'
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { eventually } from '../helpers/wait.ts'

let redis: RedisServer
let admin: Redis
before(async () => {
  redis = await startRedis()
  admin = new Redis(redis.url)
  admin.on('error', () => {})
})
after(async () => {
  admin.disconnect()
  destroyAgent()
  await redis.stop()
})

const logger = createLogger('silent')
let prefixes = 0
function l2(prefix = `t${prefixes++}:`, timeoutMs = 500): RedisDedup {
  return new RedisDedup({ url: redis.url, prefix, windowSeconds: 3600, timeoutMs, logger })
}

test('a claim is new once, ours for the same token, taken for any other; with the window as TTL', async (t) => {
  const a = l2('claims:')
  t.after(() => a.close())
  await a.connect()
  assert.deepEqual(await a.claim(['k1', 'k2'], ['n1:0', 'n1:0']), ['new', 'new'])
  assert.deepEqual(await a.claim(['k1', 'k2', 'k3'], ['n1:0', 'n2:8', 'n1:9']), ['ours', 'taken', 'new'])
  const ttl = await admin.ttl('claims:k1')
  assert.ok(ttl > 3590 && ttl <= 3600, `TTL ${ttl}`)
  assert.equal(await admin.get('claims:k2'), 'n1:0')
})

test('two nodes claiming the same keys at the same time: each key is won exactly once', async (t) => {
  const prefix = 'race:'
  const a = l2(prefix)
  const b = l2(prefix)
  t.after(() => Promise.all([a.close(), b.close()]))
  await Promise.all([a.connect(), b.connect()])
  const keys = Array.from({ length: 5000 }, (_, i) => `key-${i}`)
  const [ra, rb] = await Promise.all([
    a.claim(
      keys,
      keys.map(() => 'A:0'),
    ),
    b.claim(
      keys.toReversed(),
      keys.map(() => 'B:0'),
    ),
  ])
  assert.ok(ra && rb)
  const bByKey = new Map(keys.toReversed().map((k, i) => [k, rb[i]]))
  for (let i = 0; i < keys.length; i++) {
    const pair: string[] = [ra[i], bByKey.get(keys[i]) ?? 'missing']
    assert.deepEqual(pair.sort(), ['new', 'taken'], `key ${keys[i]}`)
  }
})

test('release gives back only claims still held by the same token', async (t) => {
  const a = l2('release:')
  t.after(() => a.close())
  await a.connect()
  await a.claim(['x', 'y'], ['n1:1', 'n2:1'])
  await a.release(['x', 'y'], ['n1:1', 'n1:1'])
  assert.equal(await admin.exists('release:x'), 0)
  assert.equal(await admin.get('release:y'), 'n2:1', "another node's claim stays")
})

test('Redis unreachable: claims answer null at once, errors are counted, and recovery is noticed', async (t) => {
  const dead = new RedisDedup({
    url: 'redis://127.0.0.1:1',
    prefix: 'x:',
    windowSeconds: 60,
    timeoutMs: 200,
    logger,
  })
  t.after(() => dead.close())
  await dead.connect()
  const started = performance.now()
  assert.equal(await dead.claim(['k'], ['n:0']), null)
  assert.ok(performance.now() - started < 100, 'no waiting on a dead Redis')
  assert.equal(dead.status.state, 'down')
  assert.ok(dead.status.errors > 0)
  await assert.rejects(dead.ping(), /redis:\/\/127\.0\.0\.1:1/)
})

test('the server delivers through a Redis outage, shows it in /ready and metrics, and recovers', async (t) => {
  const server = await startTestServer(t, {
    redisUrl: redis.url,
    redisKeyPrefix: 'outage:',
    redisTimeoutMs: 300,
    deliveryLingerMs: 0,
  })
  const now = Math.floor(Date.now() / 1000)
  const event = (id: string) =>
    eventBody({ event_id: id, event_name: 'outage', user_id: 'u1', timestamp: now })
  const total = async () =>
    (await send(`${server.url}/metrics?event_name=outage`)).body.total_events as number
  const scrape = async () => parsePrometheusText(await (await fetch(`${server.metricsUrl}/metrics`)).text())

  assert.equal((await postJson(`${server.url}/events`, event('before'))).status, 202)
  await eventually(async () => (await total()) === 1, 'first event stored')
  assert.equal((await admin.get('outage:duckdb:before')) !== null, true, 'claimed in Redis, per store')
  assert.equal(sampleValue(await scrape(), 'dedup_l2_up'), 1)

  await redis.pause()
  t.after(() => redis.start().catch(() => {}))
  for (let i = 0; i < 20; i++) {
    assert.equal((await postJson(`${server.url}/events`, event(`during-${i}`))).status, 202)
  }
  await eventually(async () => (await total()) === 21, 'events stored while Redis is down')
  const ready = await send(`${server.url}/ready`)
  assert.equal(ready.status, 200, 'Redis down does not take the node out of the load balancer')
  assert.equal(ready.body.details.dedup.l2.ok, false)
  // The reason (Redis's address and error) is in the log; /ready says it generically (issue 15, item 15).
  assert.equal(ready.body.details.dedup.l2.error, 'see the server log')
  assert.doesNotMatch(JSON.stringify(ready.body), /127\.0\.0\.1|ECONNREFUSED/)
  const down = await scrape()
  assert.equal(sampleValue(down, 'dedup_l2_up'), 0)
  assert.ok((sampleValue(down, 'dedup_l2_errors_total') ?? 0) > 0)

  await redis.start()
  await eventually(
    async () => sampleValue(await scrape(), 'dedup_l2_up') === 1 || undefined,
    'L2 back up',
    20_000,
  )
  assert.equal((await postJson(`${server.url}/events`, event('after'))).status, 202)
  await eventually(async () => (await total()) === 22, 'event after the outage stored')
  assert.notEqual(await admin.get('outage:duckdb:after'), null, 'claims resume')
  const readyAgain = await send(`${server.url}/ready`)
  assert.equal(readyAgain.body.details?.dedup?.l2?.ok ?? true, true)
})

test('a repeat sent after L1 forgot it is caught by L2 and counted there', async (t) => {
  const server = await startTestServer(t, {
    redisUrl: redis.url,
    redisKeyPrefix: 'layers:',
    dedupCacheEntries: 1,
    deliveryLingerMs: 0,
  })
  const now = Math.floor(Date.now() / 1000)
  const event = (id: string) =>
    eventBody({ event_id: id, event_name: 'layers', user_id: 'u1', timestamp: now })
  assert.equal((await postJson(`${server.url}/events`, event('a'))).status, 202)
  const dup = await postJson(`${server.url}/events`, event('a'))
  assert.deepEqual(dup.body, { status: 'accepted', event_id: 'a', duplicate: true })
  // Push 'a' out of both 1-entry caches, then send it again: only Redis still knows it.
  assert.equal((await postJson(`${server.url}/events`, event('b'))).status, 202)
  const total = async () =>
    (await send(`${server.url}/metrics?event_name=layers`)).body.total_events as number
  await eventually(async () => (await total()) === 2, 'a and b stored')
  assert.equal((await postJson(`${server.url}/events`, event('a'))).body.duplicate, undefined, 'L1 forgot a')
  const scrape = async () => parsePrometheusText(await (await fetch(`${server.metricsUrl}/metrics`)).text())
  await eventually(
    async () => sampleValue(await scrape(), 'events_duplicate_total', { layer: 'l2' }) === 1 || undefined,
    'the L2 duplicate counted',
  )
  assert.equal(await total(), 2, 'stored once')
  const m = await scrape()
  assert.equal(sampleValue(m, 'events_duplicate_total', { layer: 'l1' }), 1)
})

test('a flood of unique keys keeps L1 and the delivery cache at their bound', async (t) => {
  const server = await startTestServer(t, { dedupCacheEntries: 500, deliveryLingerMs: 0 })
  const now = Math.floor(Date.now() / 1000)
  const scrape = async () => parsePrometheusText(await (await fetch(`${server.metricsUrl}/metrics`)).text())
  const flood = (id: string) =>
    JSON.stringify(eventBody({ event_id: id, event_name: 'flood', user_id: 'u', timestamp: now }))
  for (let b = 0; b < 20; b++) {
    const lines = Array.from({ length: 500 }, (_, i) => flood(`flood-${b}-${i}`))
    const answer = await send(`${server.url}/events/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: lines.join('\n'),
    })
    assert.equal(answer.status, 202)
    assert.equal(sampleValue(await scrape(), 'dedup_l1_keys'), 500, 'L1 full, never above its bound')
  }
  const total = async () => (await send(`${server.url}/metrics?event_name=flood`)).body.total_events as number
  await eventually(async () => (await total()) === 10_000, 'the flood stored')
  assert.equal(sampleValue(await scrape(), 'dedup_delivery_keys', { sink: 'duckdb' }), 500)
  // The newest keys are still known: a resend of the last batch is all duplicates.
  const last = Array.from({ length: 3 }, (_, i) => flood(`flood-19-${497 + i}`))
  const again = await send(`${server.url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: last.join('\n'),
  })
  assert.deepEqual(again.body, { accepted: 0, duplicates: 3, rejected: [] })
})
