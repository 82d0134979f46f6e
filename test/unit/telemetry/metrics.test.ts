/**
 * The operations port of a whole server (in this process: real WAL, delivery thread, DuckDB and
 * the memory sink): the exposition parses strictly and its counters match what was sent.
 */
import assert from 'node:assert/strict'
import { type ClientRequest, request } from 'node:http'
import { test } from 'node:test'
import { eventBody } from '../../helpers/events.ts'
import { destroyAgent, postJson, send } from '../../helpers/http.ts'
import { startTestServer } from '../../helpers/in-process.ts'
import { type Family, parsePrometheusText, sampleValue } from '../../helpers/prometheus-text.ts'

const now = Math.floor(Date.now() / 1000)
const event = (i: number, extra: Record<string, unknown> = {}) =>
  eventBody({
    event_id: `m-${i}`,
    event_name: 'metrics_test',
    user_id: `u${i % 7}`,
    timestamp: now,
    ...extra,
  })

async function scrape(url: string): Promise<Map<string, Family>> {
  const answer = await send(`${url}/metrics`)
  assert.equal(answer.status, 200)
  assert.match(String(answer.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  return parsePrometheusText(answer.body)
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

test('Prometheus counters match what was sent, per reason and per sink, across a delivery restart', {
  timeout: 60_000,
}, async (t) => {
  t.after(() => destroyAgent())
  const server = await startTestServer(t, {
    sinks: 'duckdb,memory',
    deliveryLingerMs: 0,
    maxBodyBytes: 4096,
    maxPendingBytes: 64 * 1024,
  })
  assert.match(server.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  // A chunked request holds the bytes it sent so far against maxPendingBytes (3000 here, below).
  const hold = request(`${server.url}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
  })
  try {
    await checkCounters(server, hold)
  } finally {
    // Before the server's own cleanup (after-hooks run first-in, first-out), which would wait for it.
    hold.destroy()
  }
})

async function checkCounters(server: Awaited<ReturnType<typeof startTestServer>>, hold: ClientRequest) {
  const ops = server.metricsUrl
  // Before anything: every reason and dedup layer is there at 0, the limits are exported.
  let m = await scrape(ops)
  assert.equal(sampleValue(m, 'events_rejected_total', { reason: 'overloaded' }), 0)
  assert.equal(sampleValue(m, 'events_duplicate_total', { layer: 'l1' }), 0)
  assert.equal(sampleValue(m, 'admission_limit', { bound: 'pending_bytes' }), 64 * 1024)
  assert.equal(sampleValue(m, 'admission_limit', { bound: 'queue' }), 200_000)
  assert.equal(sampleValue(m, 'admission_limit', { bound: 'wal_backlog' }), 8 * 1024 ** 3)
  assert.ok(m.has('process_resident_memory_bytes'), 'process metrics are collected')

  const held = new Promise<number>((resolve, reject) => {
    hold.on('response', (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    hold.on('error', reject)
  })
  const holdBody = JSON.stringify(event(1000, { metadata: { pad: 'h'.repeat(2900) } }))
  hold.write(holdBody.slice(0, 3000))

  let accepted = 0
  for (let i = 0; i < 30; i++) {
    const a = await postJson(`${server.url}/events`, event(i))
    assert.equal(a.status, 202, JSON.stringify(a.body))
    accepted++
  }
  for (let i = 0; i < 5; i++)
    assert.equal((await postJson(`${server.url}/events`, event(100 + i, { channel: 'fax' }))).status, 400)
  for (const body of ['{', '[1,']) {
    const a = await send(`${server.url}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    assert.equal(a.status, 400)
  }
  const wrongType = await send(`${server.url}/events`, {
    method: 'POST',
    headers: { 'content-type': 'text/csv' },
    body: 'a,b',
  })
  assert.equal(wrongType.status, 415)
  const tooLarge = await postJson(`${server.url}/events`, event(200, { metadata: { pad: 'x'.repeat(5000) } }))
  assert.equal(tooLarge.status, 413)
  const batch = [
    ...Array.from({ length: 10 }, (_, i) => JSON.stringify(event(300 + i))),
    ...Array.from({ length: 3 }, (_, i) => JSON.stringify(event(400 + i, { timestamp: 'soon' }))),
  ].join('\n')
  const b = await send(`${server.url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: batch,
  })
  assert.equal(b.status, 202)
  assert.equal(b.body.accepted, 10)
  accepted += 10

  // 63 KB more would pass the 64 KiB bound while the chunked request holds 3000 bytes: refused.
  for (let i = 0; i < 2; i++) {
    const refused = await send(`${server.url}/events/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: JSON.stringify(event(500 + i, { metadata: { pad: 'y'.repeat(63_000) } })),
    })
    assert.equal(refused.status, 503)
    assert.equal(refused.headers['retry-after'], '1')
    assert.equal(refused.body.bound, 'pending_bytes')
  }
  // A large refused body is not read: the answer comes at once and the connection is closed.
  const large = await send(`${server.url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: Buffer.alloc(2 * 1024 * 1024, 0x20),
  })
  assert.equal(large.status, 503)
  assert.equal(large.headers.connection, 'close')
  assert.equal(large.body.bound, 'pending_bytes')
  const ready = await send(`${server.url}/ready`)
  assert.equal(ready.status, 503)
  assert.equal(ready.body.details.admission.bound, 'pending_bytes')
  m = await scrape(ops)
  assert.equal(sampleValue(m, 'admission_current', { bound: 'pending_bytes' }), 3000)

  hold.end(holdBody.slice(3000))
  assert.equal(await held, 202)
  accepted++

  await until('both sinks got every accepted event', async () => {
    m = await scrape(ops)
    return (
      sampleValue(m, 'events_published_total', { sink: 'duckdb' }) === accepted &&
      sampleValue(m, 'events_published_total', { sink: 'memory' }) === accepted
    )
  })
  assert.equal(sampleValue(m, 'events_accepted_total'), accepted)
  const rejected = { invalid: 5 + 3, bad_json: 2, unsupported_media_type: 1, too_large: 1, overloaded: 3 }
  for (const [reason, count] of Object.entries(rejected))
    assert.equal(sampleValue(m, 'events_rejected_total', { reason }), count, reason)
  const received = accepted + Object.values(rejected).reduce((x, y) => x + y, 0)
  assert.equal(sampleValue(m, 'events_received_total'), received)
  assert.equal(sampleValue(m, 'admission_refused_total', { bound: 'pending_bytes' }), 3)
  assert.equal(sampleValue(m, 'admission_current', { bound: 'pending_bytes' }), 0)
  assert.equal(sampleValue(m, 'events_dead_lettered_total', { source: 'intake' }), 3)
  assert.equal(sampleValue(m, 'events_dead_lettered_total', { source: 'delivery' }), 0)
  assert.equal(sampleValue(m, 'http_requests_total', { route: '/events', method: 'POST', status: '202' }), 31)
  assert.equal(
    sampleValue(m, 'http_requests_total', { route: '/events/batch', method: 'POST', status: '503' }),
    3,
  )
  assert.equal(sampleValue(m, 'http_requests_total', { route: '/ready', method: 'GET', status: '503' }), 1)
  assert.equal(sampleValue(m, 'ingest_latency_ms_count', { route: '/events', status: '202' }), 31)
  assert.equal(sampleValue(m, 'ingest_latency_ms_count', { route: '/events/batch', status: '202' }), 1)
  for (const sink of ['duckdb', 'memory']) {
    assert.equal(sampleValue(m, 'sink_batch_rows_sum', { sink }), accepted)
    assert.equal(
      sampleValue(m, 'sink_batch_rows_bucket', { sink, le: '+Inf' }),
      sampleValue(m, 'sink_batch_rows_count', { sink }),
    )
    assert.ok(sampleValue(m, 'sink_batch_latency_ms_count', { sink })! >= 1)
    assert.equal(sampleValue(m, 'sink_backlog_bytes', { sink }), 0)
    assert.equal(sampleValue(m, 'sink_breaker_state', { sink, state: 'closed' }), 1)
    assert.equal(sampleValue(m, 'sink_retries_total', { sink }), 0)
  }
  assert.equal(sampleValue(m, 'wal_backlog_bytes'), 0)
  assert.ok(sampleValue(m, 'wal_head_bytes')! > 0)
  assert.equal(sampleValue(m, 'wal_records_total'), 31 + 1)
  assert.equal(sampleValue(m, 'ingest_queue_size'), 0)
  assert.equal(sampleValue(m, 'delivery_thread_up'), 1)

  // The delivery thread dies and is restarted with fresh counters: the totals do not go back.
  await server.delivery.simulateCrash()
  await until('the delivery thread is back', async () => server.delivery.running)
  for (let i = 0; i < 5; i++)
    assert.equal((await postJson(`${server.url}/events`, event(600 + i))).status, 202)
  accepted += 5
  await until('the new thread delivered the new events on top of the old totals', async () => {
    m = await scrape(ops)
    return (
      sampleValue(m, 'events_published_total', { sink: 'memory' })! >= accepted &&
      sampleValue(m, 'events_published_total', { sink: 'duckdb' })! >= accepted
    )
  })
  assert.equal(sampleValue(m, 'delivery_thread_restarts_total'), 1)
  assert.equal(sampleValue(m, 'events_accepted_total'), accepted)
  // The memory sink starts empty after the restart and is sent everything again (at least once).
  assert.ok(sampleValue(m, 'sink_batch_rows_count', { sink: 'duckdb' })! >= 2)

  const notFound = await send(`${ops}/nope`)
  assert.equal(notFound.status, 404)
}
