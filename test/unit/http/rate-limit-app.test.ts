/** Rate limits on the real server: 429 with Retry-After and RateLimit-* headers, per key or per IP. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { digestOf } from '../../../src/http/auth.ts'
import { postJson } from '../../helpers/http.ts'
import { startTestServer } from '../../helpers/in-process.ts'
import { parsePrometheusText, sampleValue } from '../../helpers/prometheus-text.ts'
import { sleep } from '../../helpers/wait.ts'

const now = Math.floor(Date.now() / 1000)
const event = (id: string) => ({
  event_id: id,
  event_name: 'rl',
  channel: 'web',
  user_id: 'u',
  timestamp: now,
})

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

test('without API keys the bucket is per client IP; health and metrics queries are not limited', async (t) => {
  const server = await startTestServer(t, { rateLimitPerSecond: 1, rateLimitBurst: 1 })
  assert.equal((await postJson(`${server.url}/events`, event('ip0'))).status, 202)
  const refused = await postJson(`${server.url}/events`, event('ip1'))
  assert.equal(refused.status, 429)
  assert.match(refused.body.error, /exceeded for client 127\.0\.0\.1/)
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${server.url}/health`)).status, 200)
})
