/**
 * The delivery-time check survives a restart: its cache is warmed from the store, so events sent
 * again after the server restarted (L1 is empty then) are not stored twice — without Redis.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { destroyAgent, send } from '../helpers/http.ts'
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts'
import { startServerProcess } from '../helpers/server-process.ts'
import { storedEventCounts } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually } from '../helpers/wait.ts'

test('events resent after a restart (SIGKILL or SIGTERM) are stored once', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-restart-')
  t.after(async () => {
    destroyAgent()
    await removeTempDir(dataDir)
  })
  const now = Math.floor(Date.now() / 1000)
  const batch = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        event_id: `r-${from + i}`,
        event_name: 'restart',
        channel: 'api',
        user_id: `u${i}`,
        timestamp: now,
      }),
    ).join('\n')
  const post = (url: string, body: string) =>
    send(`${url}/events/batch`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })
  const total = async (url: string) =>
    (await send(`${url}/metrics?event_name=restart`)).body.total_events as number

  let server = await startServerProcess(dataDir, { SPILLWAY_DELIVERY_LINGER_MS: '0' })
  assert.deepEqual((await post(server.url, batch(0, 300))).body, {
    accepted: 300,
    duplicates: 0,
    rejected: [],
  })
  await eventually(async () => (await total(server.url)) === 300, 'first 300 stored')
  server.kill('SIGKILL')
  await server.exited()

  server = await startServerProcess(dataDir, { SPILLWAY_DELIVERY_LINGER_MS: '0' })
  // L1 starts empty: the resend is accepted, and the warmed delivery cache drops it.
  assert.deepEqual((await post(server.url, batch(0, 300))).body, {
    accepted: 300,
    duplicates: 0,
    rejected: [],
  })
  assert.deepEqual((await post(server.url, batch(300, 100))).body, {
    accepted: 100,
    duplicates: 0,
    rejected: [],
  })
  await eventually(async () => (await total(server.url)) === 400, 'the 100 new ones stored')
  const m = parsePrometheusText(await (await fetch(`${server.metricsUrl}/metrics`)).text())
  assert.equal(sampleValue(m, 'events_duplicate_total', { layer: 'delivery' }), 300)
  server.kill('SIGTERM')
  assert.equal((await server.exited()).code, 0)

  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assert.equal(stored.size, 400)
  assert.deepEqual(
    [...stored].filter(([, n]) => n > 1),
    [],
    'nothing stored twice',
  )
})
