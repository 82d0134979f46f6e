/**
 * API keys on the real server: which routes need one, the 401 answers (missing, wrong, revoked),
 * and the per-key counters in Prometheus, parsed.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { digestOf } from '../../../src/http/auth.ts'
import { eventBody } from '../../helpers/events.ts'
import { postJson, send } from '../../helpers/http.ts'
import { startTestServer } from '../../helpers/in-process.ts'
import { parsePrometheusText, sampleValue } from '../../helpers/prometheus-text.ts'

const now = Math.floor(Date.now() / 1000)
const event = (id: string) => eventBody({ event_id: id, event_name: 'auth', user_id: 'u', timestamp: now })

test('with API keys configured, ingest and GET /metrics need a valid one; health, ready and docs do not', async (t) => {
  const apiKeys = `web:${digestOf('good-key').toString('hex')},old:${digestOf('old-key').toString('hex')}:revoked`
  const server = await startTestServer(t, { apiKeys })

  const missing = await postJson(`${server.url}/events`, event('a'))
  assert.equal(missing.status, 401)
  assert.match(missing.body.error, /missing API key: send it as Authorization: Bearer <key> or X-API-Key/)
  assert.equal(missing.headers['www-authenticate'], 'Bearer realm="spillway"')

  const wrong = await postJson(`${server.url}/events`, event('b'), { 'x-api-key': 'guess' })
  assert.deepEqual([wrong.status, wrong.body.error], [401, 'API key not recognised'])
  const revoked = await postJson(`${server.url}/events`, event('c'), { authorization: 'Bearer old-key' })
  assert.deepEqual([revoked.status, revoked.body.error], [401, 'API key "old" was revoked'])

  const bearer = await postJson(`${server.url}/events`, event('d'), { authorization: 'Bearer good-key' })
  assert.equal(bearer.status, 202)
  const header = await send(`${server.url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', 'x-api-key': 'good-key' },
    body: `${JSON.stringify(event('e'))}\n${JSON.stringify(event('f'))}`,
  })
  assert.equal(header.status, 202)

  assert.equal((await send(`${server.url}/metrics?event_name=auth`)).status, 401)
  assert.equal(
    (await send(`${server.url}/metrics?event_name=auth`, { headers: { 'x-api-key': 'good-key' } })).status,
    200,
  )
  for (const path of ['/health', '/ready', '/openapi.json']) {
    assert.equal((await send(`${server.url}${path}`)).status, 200, path)
  }

  const families = parsePrometheusText(await (await fetch(`${server.metricsUrl}/metrics`)).text())
  const keyed = (key: string, route: string, status: string) =>
    sampleValue(families, 'api_key_requests_total', { key, route, status })
  assert.equal(keyed('missing', '/events', '401'), 1)
  assert.equal(keyed('unrecognised', '/events', '401'), 2, 'wrong and revoked keys')
  assert.equal(keyed('web', '/events', '202'), 1)
  assert.equal(keyed('web', '/events/batch', '202'), 1)
  assert.equal(keyed('missing', '/metrics', '401'), 1)
  assert.equal(keyed('web', '/metrics', '200'), 1)
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'unauthorized' }), 3)
  assert.equal(sampleValue(families, 'events_accepted_total'), 3)
})

test('without API keys every route stays open', async (t) => {
  const server = await startTestServer(t)
  assert.equal((await postJson(`${server.url}/events`, event('open'))).status, 202)
  assert.equal((await send(`${server.url}/metrics?event_name=auth`)).status, 200)
})

test("every answer carries X-Request-Id: the client's when it is sane, a new one otherwise", async (t) => {
  const server = await startTestServer(t, { apiKeys: `web:${digestOf('good-key').toString('hex')}` })
  const kept = await postJson(`${server.url}/events`, event('rid'), { 'x-request-id': 'lb-7f3a-01' })
  assert.equal(kept.status, 401)
  assert.equal(kept.headers['x-request-id'], 'lb-7f3a-01', 'a refused request keeps its id too')
  const made = await send(`${server.url}/health`, { headers: { 'x-request-id': 'has space' } })
  assert.match(String(made.headers['x-request-id']), /^[0-9a-f-]{36}$/)
})
