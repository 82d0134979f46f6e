/**
 * G3 across nodes (docs/ARCHITECTURE.md "Duplicates"): two `spillway serve` processes on
 * different ports share one Redis (L2). The
 * same events, each sent one to three times, go to both nodes at once — single and in batches,
 * as load balancers and retrying SDKs do. Every acknowledged event is stored exactly once:
 * counted over everything the two nodes stored (each node's own DuckDB store here; the
 * ClickHouse variant shares one store, see two-nodes-clickhouse.test.ts).
 * Then the same with one node killed by SIGKILL in the middle: its clients fail over to the
 * other node, it is restarted, redelivers its WAL, and still nothing is stored twice or lost.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { parsePrometheusText, sampleValue } from '../helpers/prometheus-text.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { storedEventCounts } from '../helpers/store-check.ts'
import {
  assertStoredOnce,
  killAndRestartFirst,
  type NodeHandle,
  planSends,
  runSends,
  startNode,
  stopNode,
  storedSoFar,
  waitForStored,
} from '../helpers/two-nodes.ts'

let redis: RedisServer
before(async () => {
  redis = await startRedis()
})
after(() => redis.stop())

const UNIQUE = Number(process.env['TWO_NODE_EVENTS'] ?? 6000)

const node = (t: { after: (fn: () => Promise<void>) => void }, prefix: string) =>
  startNode(t, {
    REDIS_URL: redis.url,
    SPILLWAY_REDIS_KEY_PREFIX: prefix,
    SPILLWAY_DELIVERY_LINGER_MS: '20',
  })

const storedCounts = async (nodes: readonly NodeHandle[]) => {
  const total = new Map<string, number>()
  for (const n of nodes) {
    for (const [id, count] of await storedEventCounts(join(n.dataDir, 'spillway.duckdb'))) {
      total.set(id, (total.get(id) ?? 0) + count)
    }
  }
  return total
}

test('two nodes, one Redis: every event sent to both, with repeats, is stored once', {
  timeout: 180_000,
}, async (t) => {
  const nodes = [await node(t, 'pair:'), await node(t, 'pair:')]
  const plan = planSends(UNIQUE, 'pair', 1)
  const outcome = await runSends(plan, nodes, { clients: 16 })
  t.diagnostic(`${plan.length} sends of ${UNIQUE} events: ${outcome.acked.size} acked`)
  assert.equal(outcome.acked.size, UNIQUE, 'every event acknowledged')
  await waitForStored(() => storedSoFar(nodes, 'pair'), outcome.acked.size)

  // Every copy that was acknowledged is either stored or counted as a duplicate by one layer.
  let stored = 0
  let duplicates = 0
  for (const n of nodes) {
    const m = parsePrometheusText(await (await fetch(`${n.metricsUrl}/metrics`)).text())
    const accepted = sampleValue(m, 'events_accepted_total') ?? 0
    const l1 = sampleValue(m, 'events_duplicate_total', { layer: 'l1' }) ?? 0
    const l2 = sampleValue(m, 'events_duplicate_total', { layer: 'l2' }) ?? 0
    const delivery = sampleValue(m, 'events_duplicate_total', { layer: 'delivery' }) ?? 0
    stored += accepted - l2 - delivery
    duplicates += l1 + l2 + delivery
    t.diagnostic(
      `node ${n.server.url}: accepted ${accepted}, duplicates l1 ${l1} l2 ${l2} delivery ${delivery}`,
    )
  }
  assert.equal(stored, UNIQUE, 'accepted minus delivery-time duplicates = stored')
  assert.equal(stored + duplicates, outcome.eventsSent, 'every copy sent is stored or a counted duplicate')

  for (const n of nodes) await stopNode(n)
  assertStoredOnce(await storedCounts(nodes), outcome.acked, outcome.sent)
})

test('two nodes, one killed with SIGKILL mid-way and restarted: still stored exactly once', {
  timeout: 300_000,
}, async (t) => {
  const nodes = [await node(t, 'kill:'), await node(t, 'kill:')]
  const plan = planSends(UNIQUE, 'kill', 2)
  const outcome = await runSends(plan, nodes, {
    clients: 16,
    // After a third of the sends, node 0 dies; its clients fail over to node 1 until it is back.
    chaos: killAndRestartFirst(nodes),
  })
  t.diagnostic(
    `${plan.length} sends of ${UNIQUE} events: ${outcome.acked.size} acked, ${outcome.failovers} fail-overs`,
  )
  assert.ok(outcome.failovers > 0, 'the kill hit requests in flight or queued for node 0')
  assert.equal(outcome.acked.size, UNIQUE, 'every event acknowledged by one node or the other')
  await waitForStored(() => storedSoFar(nodes, 'kill'), outcome.acked.size)
  for (const n of nodes) await stopNode(n)
  assertStoredOnce(await storedCounts(nodes), outcome.acked, outcome.sent)
})
