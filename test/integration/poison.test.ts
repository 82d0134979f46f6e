/**
 * A poison event, against the real server process: the http sink's receiver refuses (400
 * `{"error":"poison"}`) any batch that holds an event whose metadata says `"poison": true`. One
 * batch request of 50 events carries one such event. Delivery halves the refused batch until the
 * poison event stands alone, dead-letters it with the receiver's reason, and delivers the other
 * 49; DuckDB, which has no quarrel with the event, stores all 50.
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { postJson, send } from '../helpers/http.ts'
import { startHttpSinkRig } from '../helpers/http-sink-rig.ts'
import { storedEventCounts } from '../helpers/store-check.ts'
import { eventually } from '../helpers/wait.ts'

const now = Math.floor(Date.now() / 1000)
const POISON_INDEX = 17

test('a poison event is dead-lettered with the receiver’s reason while the rest of its batch is delivered', {
  timeout: 60_000,
}, async (t) => {
  const { receiver, dataDir, server } = await startHttpSinkRig(
    t,
    'spillway-poison-',
    {
      SPILLWAY_DELIVERY_LINGER_MS: '20',
    },
    ({ events }) =>
      events.some((e) => e['metadata']?.poison === true)
        ? { status: 400, body: '{"error":"poison"}' }
        : { status: 200, body: '{"ok":true}' },
  )

  const batch = Array.from({ length: 50 }, (_, i) => ({
    event_id: `poison-test-${i}`,
    event_name: 'checkout',
    channel: 'api',
    user_id: `user_${i % 9}`,
    timestamp: now - 30,
    metadata: i === POISON_INDEX ? { poison: true, order: i } : { order: i },
  }))
  const poisonId = batch[POISON_INDEX].event_id
  const answer = await postJson(`${server.url}/events/batch`, batch)
  assert.equal(answer.status, 202, JSON.stringify(answer.body))
  assert.equal(answer.body.accepted, 50)

  const healthy = batch.filter((e) => e.event_id !== poisonId).map((e) => e.event_id)
  const entry = await eventually(async () => {
    const entries = await deadLetters(join(dataDir, 'deadletter'))
    return entries.find((e) => e.sink === 'http')
  }, 'the poison event in the dead-letter store')
  await eventually(
    async () => healthy.every((id) => receiver.stored.has(id)),
    'the 49 others at the receiver',
  )

  assert.equal(entry.event.event_id, poisonId)
  assert.deepEqual(entry.event.metadata, { poison: true, order: POISON_INDEX })
  assert.match(entry.reason, /HTTP 400 Bad Request: \{"error":"poison"\}/)
  assert.equal(entry.index, POISON_INDEX, 'its index in the batch request (its WAL record)')
  assert.equal(typeof entry.position, 'number')
  const httpEntries = (await deadLetters(join(dataDir, 'deadletter'))).filter((e) => e.sink === 'http')
  assert.equal(httpEntries.length, 1, 'only the poison event is dead-lettered')
  assert.equal(receiver.stored.has(poisonId), false)
  assert.equal(receiver.stored.size, 49)
  const refusals = receiver.posts.filter((r) => r.events.some((e) => e['event_id'] === poisonId))
  assert.ok(
    refusals.length >= 2 && refusals.length <= 8,
    `${refusals.length} refused pieces: halving, not one by one`,
  )

  // The cursor moved past the dead letter: nothing is left behind for the http sink.
  await eventually(async () => (await send(`${server!.url}/ready`)).status === 200, '/ready')

  server.kill('SIGTERM')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
  const stored = [...(await storedEventCounts(join(dataDir, 'spillway.duckdb'))).keys()]
  assert.deepEqual(stored.sort(), batch.map((e) => e.event_id).sort(), 'DuckDB stores all 50, once each')
})

// biome-ignore lint/suspicious/noExplicitAny: dead-letter lines are arbitrary JSON
async function deadLetters(dir: string): Promise<any[]> {
  let names: string[]
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith('.jsonl'))
  } catch {
    return []
  }
  const entries = []
  for (const name of names) {
    for (const line of (await readFile(join(dir, name), 'utf8')).split('\n')) {
      if (line) entries.push(JSON.parse(line))
    }
  }
  return entries
}
