/**
 * The topology for G3 (docs/ARCHITECTURE.md "Duplicates"): two `spillway serve`
 * processes on different ports sharing one
 * Redis (L2) and ONE store, ClickHouse. The same events, each sent one to three times, go to both
 * nodes at once; every acknowledged event is in ClickHouse exactly once — also with one node
 * killed by SIGKILL mid-way (its clients fail over) and restarted.
 * Without a kill, the layers stop every copy before it reaches ClickHouse: not one extra row is
 * inserted, even before the ReplacingMergeTree merges. With a kill, a node replays what it
 * inserted after its last saved cursor (ClickHouse cannot commit the cursor with the rows); the
 * table merges those copies, and /metrics never counts them.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import {
  type ClickHouseServer,
  dropDatabase,
  startClickHouse,
  storedClickHouseCounts,
  uniqueDatabase,
} from '../helpers/clickhouse.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import {
  assertStoredOnce,
  killAndRestartFirst,
  type NodeHandle,
  planSends,
  runSends,
  startNode,
  stopNode,
  waitForStored,
} from '../helpers/two-nodes.ts'

let redis: RedisServer
let clickhouse: ClickHouseServer
before(async () => {
  ;[redis, clickhouse] = await Promise.all([startRedis(), startClickHouse()])
})
after(() => Promise.all([redis.stop(), clickhouse.stop()]))

const UNIQUE = Number(process.env['TWO_NODE_EVENTS'] ?? 4000)

async function pair(t: { after: (fn: () => Promise<void>) => void }, name: string) {
  const database = uniqueDatabase(`two_nodes_${name}`)
  t.after(() => dropDatabase(clickhouse, database))
  const env = {
    SPILLWAY_SINKS: 'clickhouse',
    CLICKHOUSE_URL: clickhouse.url,
    CLICKHOUSE_DATABASE: database,
    REDIS_URL: redis.url,
    SPILLWAY_REDIS_KEY_PREFIX: `${database}:`,
    SPILLWAY_DELIVERY_LINGER_MS: '20',
  }
  const nodes: NodeHandle[] = [await startNode(t, env), await startNode(t, env)]
  // One store: either node's GET /metrics answers for both.
  const stored = async () => {
    const answer = await fetch(`${nodes[1].server.url}/metrics?event_name=${name}`)
    return ((await answer.json()) as { total_events: number }).total_events
  }
  return { nodes, database, stored }
}

test('two nodes, one Redis, one ClickHouse: events sent to both with repeats are stored once', {
  timeout: 180_000,
}, async (t) => {
  const { nodes, database, stored } = await pair(t, 'chpair')
  const plan = planSends(UNIQUE, 'chpair', 3)
  const outcome = await runSends(plan, nodes, { clients: 16 })
  assert.equal(outcome.acked.size, UNIQUE, 'every event acknowledged')
  await waitForStored(stored, UNIQUE)
  for (const n of nodes) await stopNode(n)
  const counts = await storedClickHouseCounts(clickhouse, database)
  t.diagnostic(
    `${outcome.eventsSent} copies sent, ${counts.rowsBefore} rows inserted, ${counts.uniqueBefore} unique`,
  )
  assert.equal(counts.rowsBefore, UNIQUE, 'not one duplicate row reached ClickHouse, even before merges')
  assertStoredOnce(counts.merged, outcome.acked, outcome.sent)
})

test('two nodes on one ClickHouse, one SIGKILLed mid-way and restarted: stored exactly once', {
  timeout: 300_000,
}, async (t) => {
  const { nodes, database, stored } = await pair(t, 'chkill')
  const plan = planSends(UNIQUE, 'chkill', 4)
  const outcome = await runSends(plan, nodes, { clients: 16, chaos: killAndRestartFirst(nodes) })
  t.diagnostic(`${plan.length} sends: ${outcome.acked.size} acked, ${outcome.failovers} fail-overs`)
  assert.ok(outcome.failovers > 0, 'the kill hit requests for node 0')
  assert.equal(outcome.acked.size, UNIQUE)
  await waitForStored(stored, UNIQUE)
  for (const n of nodes) await stopNode(n)
  const counts = await storedClickHouseCounts(clickhouse, database)
  t.diagnostic(`${counts.rowsBefore} rows inserted for ${counts.uniqueBefore} events before the final merge`)
  assertStoredOnce(counts.merged, outcome.acked, outcome.sent)
})
