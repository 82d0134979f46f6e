/**
 * Tenants (API keys on) against real `spillway serve` processes: each key's `event_id`s are its
 * own — two keys sending the same id both get their event stored, in DuckDB and through a shared
 * Redis L2 between two nodes — and a key reusing one of its ids for different content gets 409.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { DuckDBInstance } from '@duckdb/node-api'
import { Redis } from 'ioredis'
import { digestOf } from '../../src/http/auth.ts'
import { eventBody } from '../helpers/events.ts'
import { destroyAgent, postJson, send } from '../helpers/http.ts'
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually } from '../helpers/wait.ts'

const KEYS = { alice: 'alice-secret-key', bob: 'bob-secret-key' } as const
const API_KEYS = Object.entries(KEYS)
  .map(([label, key]) => `${label}:${digestOf(key).toString('hex')}`)
  .join(',')
const now = Math.floor(Date.now() / 1000)
const event = (id: string, user: string, extra: Record<string, unknown> = {}) =>
  eventBody({ event_id: id, event_name: 'tenant', user_id: user, timestamp: now - 60, ...extra })
const as = (who: keyof typeof KEYS) => ({ 'x-api-key': KEYS[who] })
const CONFLICT = 'event_id "order-42" was already used for a different event'

let redis: RedisServer
let admin: Redis
const dirs: string[] = []
const servers: ServerProcess[] = []
before(async () => {
  redis = await startRedis()
  admin = new Redis(redis.url)
  admin.on('error', () => {})
})
after(async () => {
  // A failed assertion leaves its servers running: stop them so the test file can end.
  for (const server of servers)
    if (server.proc.exitCode === null && server.proc.signalCode === null) server.kill('SIGKILL')
  admin.disconnect()
  destroyAgent()
  await redis.stop()
  for (const dir of dirs) await removeTempDir(dir)
})

async function serve(env: Record<string, string> = {}): Promise<ServerProcess & { dataDir: string }> {
  const dataDir = await makeTempDir('spillway-tenants-')
  dirs.push(dataDir)
  const server = await startServerProcess(dataDir, {
    SPILLWAY_API_KEYS: API_KEYS,
    SPILLWAY_DELIVERY_LINGER_MS: '0',
    ...env,
  })
  servers.push(server)
  return Object.assign(server, { dataDir })
}

async function stop(server: ServerProcess): Promise<void> {
  server.kill('SIGTERM')
  assert.equal((await server.exited()).code, 0, `clean exit; see ${server.logFile}`)
}

const total = async (server: ServerProcess) =>
  (await send(`${server.url}/metrics?event_name=tenant`, { headers: as('alice') })).body
    .total_events as number

/** (tenant, event_id, user_id) of every row, from a DuckDB file no server holds any more. */
async function storedRows(dataDir: string): Promise<string[]> {
  const db = await DuckDBInstance.create(join(dataDir, 'spillway.duckdb'))
  const conn = await db.connect()
  try {
    const rows = (
      await conn.runAndReadAll('SELECT tenant, event_id, user_id FROM events ORDER BY ALL')
    ).getRows()
    return rows.map((row) => row.join(' '))
  } finally {
    conn.closeSync()
    db.closeSync()
  }
}

test('two API keys sending the same event_id both get their event stored; a reused id with other content is 409', {
  timeout: 120_000,
}, async () => {
  const server = await serve()
  const first = await postJson(`${server.url}/events`, event('order-42', 'a1', { sent_at: now }), as('alice'))
  assert.deepEqual([first.status, first.body], [202, { status: 'accepted', event_id: 'order-42' }])
  const other = await postJson(`${server.url}/events`, event('order-42', 'b1'), as('bob'))
  assert.deepEqual(
    [other.status, other.body],
    [202, { status: 'accepted', event_id: 'order-42' }],
    "bob's order-42 is not alice's",
  )

  // An exact retry — even re-sent later with another sent_at — is still a duplicate.
  const retry = await postJson(
    `${server.url}/events`,
    event('order-42', 'a1', { sent_at: now - 7 }),
    as('alice'),
  )
  assert.deepEqual(
    [retry.status, retry.body],
    [202, { status: 'accepted', event_id: 'order-42', duplicate: true }],
  )
  const reused = await postJson(`${server.url}/events`, event('order-42', 'a2'), as('alice'))
  assert.deepEqual([reused.status, reused.body], [409, { error: CONFLICT }])

  const batch = await send(`${server.url}/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson', ...as('bob') },
    body: [event('order-42', 'b1'), event('order-42', 'b2'), event('order-43', 'b3')]
      .map((e) => JSON.stringify(e))
      .join('\n'),
  })
  assert.deepEqual(
    [batch.status, batch.body],
    [202, { accepted: 1, duplicates: 1, rejected: [{ index: 1, error: CONFLICT }] }],
  )

  await eventually(async () => (await total(server)) === 3, 'three events stored')
  const families = parsePrometheusText(await (await fetch(`${server.metricsUrl}/metrics`)).text())
  assert.equal(sampleValue(families, 'events_rejected_total', { reason: 'conflict' }), 2)
  await stop(server)
  assert.deepEqual(await storedRows(server.dataDir), [
    'alice order-42 a1',
    'bob order-42 b1',
    'bob order-43 b3',
  ])
})

test('two nodes sharing Redis: L2 keys are per tenant, so only a true copy is dropped', {
  timeout: 120_000,
}, async () => {
  const env = { REDIS_URL: redis.url, SPILLWAY_REDIS_KEY_PREFIX: 'tenants:' }
  const [a, b] = await Promise.all([serve(env), serve(env)])
  const claimed = async () => (await admin.keys('tenants:*')).sort()

  assert.equal((await postJson(`${a.url}/events`, event('order-42', 'a1'), as('alice'))).status, 202)
  await eventually(async () => (await total(a)) === 1, "alice's event stored on node A")
  assert.equal((await postJson(`${b.url}/events`, event('order-42', 'b1'), as('bob'))).status, 202)
  await eventually(
    async () => (await total(b)) === 1,
    "bob's event stored on node B, though A claimed order-42",
  )
  assert.deepEqual(await claimed(), ['tenants:duckdb:alice/order-42', 'tenants:duckdb:bob/order-42'])

  // A true copy sent to the other node passes its L1 and is dropped by L2.
  const copy = await postJson(`${b.url}/events`, event('order-42', 'a1'), as('alice'))
  assert.deepEqual(copy.body, { status: 'accepted', event_id: 'order-42' })
  const l2Duplicates = async () =>
    sampleValue(
      parsePrometheusText(await (await fetch(`${b.metricsUrl}/metrics`)).text()),
      'events_duplicate_total',
      { layer: 'l2' },
    )
  await eventually(async () => (await l2Duplicates()) === 1, "the copy of alice's event dropped by L2 on B")
  assert.equal(await total(b), 1)

  await Promise.all([stop(a), stop(b)])
  assert.deepEqual(await storedRows(a.dataDir), ['alice order-42 a1'])
  assert.deepEqual(await storedRows(b.dataDir), ['bob order-42 b1'])
})
