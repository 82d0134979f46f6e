/** Rate limits on the real server: 429 with Retry-After and RateLimit-* headers, per key or per IP. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { digestOf } from '../../../src/http/auth.ts'
import { eventBody } from '../../helpers/events.ts'
import { postJson, send } from '../../helpers/http.ts'
import { startTestServer } from '../../helpers/in-process.ts'
import { parsePrometheusText, sampleValue } from '../../helpers/prometheus-text.ts'
import { sleep } from '../../helpers/wait.ts'

const now = Math.floor(Date.now() / 1000)
const event = (id: string) => eventBody({ event_id: id, event_name: 'rl', user_id: 'u', timestamp: now })

test('per API key: the burst passes, the next gets 429 with Retry-After; another key is not affected; tokens come back', async (t) => {
  const apiKeys = ['a', 'b'].map((k) => `${k}:${digestOf(`key-${k}`).toString('hex')}`).join(',')
  const server = await startTestServer(t, { apiKeys, rateLimitPerSecond: 2, rateLimitBurst: 3 })
  const post = (id: string, key: string) => postJson(`${server.url}/events`, event(id), { 'x-api-key': key })

  const answers = []
  for (let i = 0; i < 4; i++) answers.push(await post(`a${i}`, 'key-a'))
  assert.deepEqual(
    answers.map((a) => [a.status, a.headers['ratelimit-limit'], a.headers['ratelimit-remaining']]),
    [
      [202, '3', '2'],
      [202, '3', '1'],
      [202, '3', '0'],
      [429, '3', '0'],
    ],
  )
  const refused = answers[3]
  assert.equal(refused.headers['retry-after'], '1')
  assert.match(
    refused.body.error,
    /rate limit of 2 requests\/s \(burst 3\) exceeded for API key "a"; retry after 1 s/,
  )
  assert.equal((await post('b0', 'key-b')).status, 202, 'key b has its own bucket')
  await sleep(600)
  assert.equal((await post('a4', 'key-a')).status, 202, 'a token is back after 0.5 s at 2/s')

  const families = parsePrometheusText(await (await fetch(`${server.metricsUrl}/metrics`)).text())
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'rate_limited' }), 1)
  assert.equal(
    sampleValue(families, 'api_key_requests_total', { key: 'a', route: '/events', status: '429' }),
    1,
  )
})

test('without API keys the bucket is per client IP; health is not limited', async (t) => {
  const server = await startTestServer(t, { rateLimitPerSecond: 1, rateLimitBurst: 1 })
  assert.equal((await postJson(`${server.url}/events`, event('ip0'))).status, 202)
  const refused = await postJson(`${server.url}/events`, event('ip1'))
  assert.equal(refused.status, 429)
  assert.match(refused.body.error, /exceeded for client 127\.0\.0\.1/)
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${server.url}/health`)).status, 200)
})

test('X-Forwarded-For names the client only from a trusted proxy; IPv6 clients share a bucket per /64', async (t) => {
  const xff = (address: string) => ({ 'x-forwarded-for': `198.51.100.9, ${address}` })
  const untrusting = await startTestServer(t, { rateLimitPerSecond: 1, rateLimitBurst: 1 })
  assert.equal((await postJson(`${untrusting.url}/events`, event('u0'), xff('203.0.113.1'))).status, 202)
  const spoofed = await postJson(`${untrusting.url}/events`, event('u1'), xff('203.0.113.2'))
  assert.equal(spoofed.status, 429, 'without trustProxy the header is ignored: one bucket, the socket peer')
  assert.match(spoofed.body.error, /client 127\.0\.0\.1/)

  const server = await startTestServer(t, {
    rateLimitPerSecond: 1,
    rateLimitBurst: 1,
    trustProxy: 'loopback',
  })
  const post = (id: string, address: string) => postJson(`${server.url}/events`, event(id), xff(address))
  assert.equal((await post('a0', '203.0.113.1')).status, 202)
  assert.equal((await post('a1', '203.0.113.2')).status, 202, 'another client behind the same proxy')
  const again = await post('a2', '203.0.113.1')
  assert.equal(again.status, 429)
  assert.match(again.body.error, /client 203\.0\.113\.1;/)

  assert.equal((await post('v0', '2001:db8:1:2::1')).status, 202)
  const sameNet = await post('v1', '2001:db8:1:2:aaaa:bbbb:cccc:dddd')
  assert.equal(sameNet.status, 429, 'the same /64 is one client')
  assert.match(sameNet.body.error, /client 2001:db8:1:2::\/64/)
  assert.equal((await post('v2', '2001:db8:1:3::1')).status, 202, 'the next /64 is another')

  const hops = await startTestServer(t, { rateLimitPerSecond: 1, rateLimitBurst: 1, trustProxy: '1' })
  const viaHop = (id: string, chain: string) =>
    postJson(`${hops.url}/events`, event(id), { 'x-forwarded-for': chain })
  assert.equal((await viaHop('h0', '10.0.0.1, 203.0.113.5')).status, 202)
  assert.equal((await viaHop('h1', '10.0.0.2, 203.0.113.5')).status, 429, 'one hop: the rightmost entry')
})

test('refused API keys are rate limited per client, on the ingest routes and GET /metrics', async (t) => {
  const apiKeys = `web:${digestOf('good').toString('hex')}`
  const server = await startTestServer(t, { apiKeys, rateLimitPerSecond: 1, rateLimitBurst: 2 })
  const guess = (i: number) => postJson(`${server.url}/events`, event(`g${i}`), { 'x-api-key': `guess-${i}` })
  assert.deepEqual([(await guess(0)).status, (await guess(1)).status], [401, 401])
  const slowed = await guess(2)
  assert.equal(slowed.status, 429, 'the third wrong key in a row')
  assert.ok(Number(slowed.headers['retry-after']) >= 1)
  assert.match(slowed.body.error, /exceeded for client 127\.0\.0\.1; retry after/)
  const metrics = await send(`${server.url}/metrics?event_name=x`, { headers: { 'x-api-key': 'guess-m' } })
  assert.equal(metrics.status, 429, 'the same client guessing on GET /metrics')
  assert.equal(
    (await postJson(`${server.url}/events`, event('ok'), { 'x-api-key': 'good' })).status,
    202,
    'a valid key is not slowed by the guesses from its address',
  )
})

test('GET /metrics queries are limited in buckets of their own', async (t) => {
  const server = await startTestServer(t, { rateLimitPerSecond: 1, rateLimitBurst: 2 })
  const ask = () => send(`${server.url}/metrics?event_name=x`)
  const answers = [await ask(), await ask(), await ask()]
  assert.deepEqual(
    answers.map((a) => a.status),
    [200, 200, 429],
  )
  assert.equal(answers[0].headers['ratelimit-limit'], '2')
  assert.match(
    answers[2].body.error,
    /rate limit of 1 requests\/s \(burst 2\) exceeded for client 127\.0\.0\.1/,
  )
  assert.equal((await postJson(`${server.url}/events`, event('q0'))).status, 202, 'ingest has its own bucket')
})
