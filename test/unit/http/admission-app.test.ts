/**
 * Admission as the API applies it: fastify's inject against the real app and Ingestor, with a WAL
 * whose appends the test resolves or fails by hand, so the moments between "admitted" and
 * "appended" can be observed.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadConfig } from '../../../src/config/load.ts'
import type { OptionName } from '../../../src/config/schema.ts'
import type { WalWriter } from '../../../src/wal/writer.ts'
import { stubApp } from '../../helpers/app-stubs.ts'
import { eventBody } from '../../helpers/events.ts'
import { parsePrometheusText, sampleValue } from '../../helpers/prometheus-text.ts'

interface PendingAppend {
  readonly payload: Buffer
  resolve(position: number): void
  reject(error: Error): void
}

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  overrides: Partial<Record<OptionName, unknown>> = {},
) {
  const config = loadConfig({ env: {}, overrides: { logLevel: 'silent', ...overrides } })
  const appends: PendingAppend[] = []
  let arrived = Promise.withResolvers<void>()
  const wal = {
    append(payload: Buffer) {
      const { promise, resolve, reject } = Promise.withResolvers<number>()
      appends.push({ payload, resolve, reject })
      arrived.resolve()
      return promise
    },
  } as unknown as WalWriter
  const { app, admission, ingestor, metrics } = await stubApp(t, config, wal)
  const nextAppend = async () => {
    await arrived.promise
    arrived = Promise.withResolvers<void>()
    return appends[appends.length - 1]
  }
  const scrape = async () => parsePrometheusText((await metrics.render()).body)
  return { app, admission, ingestor, metrics, nextAppend, scrape }
}

const now = Math.floor(Date.now() / 1000)
// No event_id: the server derives each from the content, so distinct users are distinct events.
const event = (user: string) =>
  JSON.stringify(eventBody({ event_id: undefined, event_name: 'signup', user_id: user, timestamp: now }))

test('the reservation is held until the append resolves, and the event is counted accepted only then', async (t) => {
  const { app, admission, nextAppend, scrape } = await setup(t)
  const body = event('u1')
  const answer = app.inject({
    method: 'POST',
    url: '/events',
    headers: { 'content-type': 'application/json' },
    body,
  })
  const append = await nextAppend()
  assert.equal(admission.pendingBytes, Buffer.byteLength(body), 'the body is held while the append waits')
  let families = await scrape()
  assert.equal(
    sampleValue(families, 'events_accepted_total'),
    0,
    'nothing accepted before the append resolved',
  )
  assert.equal(sampleValue(families, 'ingest_queue_size'), 1)
  assert.equal(
    sampleValue(families, 'admission_current', { bound: 'pending_bytes' }),
    Buffer.byteLength(body),
  )
  append.resolve(100)
  const res = await answer
  assert.equal(res.statusCode, 202)
  assert.equal(admission.pendingBytes, 0)
  families = await scrape()
  assert.equal(sampleValue(families, 'events_accepted_total'), 1)
  assert.equal(sampleValue(families, 'events_received_total'), 1)
  assert.equal(sampleValue(families, 'ingest_queue_size'), 0)
})

test('a rejected append releases its bytes and counts the events as storage_unavailable', async (t) => {
  const { app, admission, nextAppend, scrape } = await setup(t)
  const body = [event('a'), event('b'), '{"event_name":"x"}'].join('\n')
  const answer = app.inject({
    method: 'POST',
    url: '/events/batch',
    headers: { 'content-type': 'application/x-ndjson' },
    body,
  })
  const append = await nextAppend()
  assert.equal(admission.pendingBytes, Buffer.byteLength(body))
  const { spillwayError } = await import('../../../src/errors.ts')
  append.reject(spillwayError('SPW_ERR_WAL_IO', 'WAL fdatasync failed (ENOSPC): no space left on device'))
  const res = await answer
  assert.equal(res.statusCode, 503)
  assert.equal(res.headers['retry-after'], '1')
  assert.equal(admission.pendingBytes, 0, 'released on failure')
  const families = await scrape()
  assert.equal(sampleValue(families, 'events_received_total'), 3)
  assert.equal(sampleValue(families, 'events_accepted_total'), 0)
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'invalid' }), 1)
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'storage_unavailable' }), 2)
})

test('a refused request is answered 503 with Retry-After before its body is read', async (t) => {
  const { app, admission, nextAppend, scrape } = await setup(t, { maxPendingBytes: 64 * 1024 })
  // Hold 60 KB in flight: a valid event padded with metadata.
  const padded = JSON.stringify(
    eventBody({
      event_id: undefined,
      event_name: 'big',
      user_id: 'u',
      timestamp: now,
      metadata: { pad: 'x'.repeat(60_000) },
    }),
  )
  const first = app.inject({
    method: 'POST',
    url: '/events',
    headers: { 'content-type': 'application/json' },
    body: padded,
  })
  const append = await nextAppend()
  // Not JSON and the wrong type: a parsed body would be 415; a refused one never gets that far.
  const res = await app.inject({
    method: 'POST',
    url: '/events',
    headers: { 'content-type': 'text/plain' },
    body: 'x'.repeat(8 * 1024),
  })
  assert.equal(res.statusCode, 503)
  assert.equal(res.headers['retry-after'], '1')
  assert.notEqual(res.headers.connection, 'close', 'a small refused body keeps the connection')
  const answer = res.json()
  assert.equal(answer.bound, 'pending_bytes')
  assert.match(answer.error, /would bring request bodies in memory to .* over the limit of 64\.0 KiB/)
  const big = await app.inject({
    method: 'POST',
    url: '/events/batch',
    headers: { 'content-type': 'application/x-ndjson' },
    body: 'x'.repeat(100 * 1024),
  })
  assert.equal(big.statusCode, 503)
  assert.equal(big.headers.connection, 'close', 'a large refused body closes the connection unread')
  append.resolve(1)
  assert.equal((await first).statusCode, 202)
  assert.equal(admission.pendingBytes, 0)
  const families = await scrape()
  assert.equal(sampleValue(families, 'admission_refused_total', { bound: 'pending_bytes' }), 2)
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'overloaded' }), 2)
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'unsupported_media_type' }), 0)
  assert.equal(
    sampleValue(families, 'http_requests_total', { route: '/events', method: 'POST', status: '503' }),
    1,
  )
})

test('a request that fails before its handler (415, bad JSON) releases its reservation', async (t) => {
  const { app, admission, scrape } = await setup(t)
  const wrongType = await app.inject({
    method: 'POST',
    url: '/events',
    headers: { 'content-type': 'text/plain' },
    body: 'hi',
  })
  assert.equal(wrongType.statusCode, 415)
  const notJson = await app.inject({
    method: 'POST',
    url: '/events',
    headers: { 'content-type': 'application/json' },
    body: '{',
  })
  assert.equal(notJson.statusCode, 400)
  const chunkedGzip = await app.inject({
    method: 'POST',
    url: '/events',
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    body: 'not gzip',
  })
  assert.equal(chunkedGzip.statusCode, 400)
  assert.equal(admission.pendingBytes, 0)
  const families = await scrape()
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'unsupported_media_type' }), 1)
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'bad_json' }), 1)
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'bad_encoding' }), 1)
  assert.equal(sampleValue(families, 'events_received_total'), 3)
})

test('the queue bound refuses while queueSize events wait for the group commit', async (t) => {
  const { app, nextAppend, scrape } = await setup(t, { queueSize: 2 })
  const post = (u: string) =>
    app.inject({
      method: 'POST',
      url: '/events',
      headers: { 'content-type': 'application/json' },
      body: event(u),
    })
  const a = post('a')
  const first = await nextAppend()
  const b = post('b')
  const second = await nextAppend()
  const refused = await post('c')
  assert.equal(refused.statusCode, 503)
  assert.equal(refused.json().bound, 'queue')
  first.resolve(1)
  second.resolve(2)
  assert.equal((await a).statusCode, 202)
  assert.equal((await b).statusCode, 202)
  const families = await scrape()
  assert.equal(sampleValue(families, 'admission_refused_total', { bound: 'queue' }), 1)
  assert.equal(sampleValue(families, 'admission_limit', { bound: 'queue' }), 2)
})
