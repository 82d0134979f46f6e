/**
 * The scale-out topology (docs/ARCHITECTURE.md "Scale out") on one machine: two `spillway serve`
 * nodes writing to a log
 * (Kafka or JetStream), one `spillway consume` node loading the log into ClickHouse, Redis as the
 * shared dedup layer. The traffic is two-nodes.ts's: every event sent one to three times, to
 * either serve node, alone or in batches, by clients that fail over when their node is down.
 * The chaos: serve node 0 and the consume node are SIGKILLed mid-way and restarted.
 * The serve nodes answer queries from the ClickHouse the consumer loads (`queryStore: clickhouse`):
 * their `GET /metrics`, `/metrics/top` and `/metrics/series` must count every event once.
 */
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import {
  type ClickHouseServer,
  dropDatabase,
  startClickHouse,
  storedClickHouseCounts,
  uniqueDatabase,
} from './clickhouse.ts'
import { type RedisServer, startRedis } from './redis.ts'
import {
  assertStoredOnce,
  type Chaos,
  type NodeHandle,
  planSends,
  runSends,
  startNode,
  stopNode,
  waitForStored,
} from './two-nodes.ts'

export interface TopologyOptions {
  readonly name: string
  readonly clickhouse: ClickHouseServer
  readonly redis: RedisServer
  /** `kafka` or `nats`: the serve nodes' sink and the consumer's `--from`. */
  readonly log: 'kafka' | 'nats'
  /** Where the log is, and which topic/stream/group this run uses (env of every node). */
  readonly logEnv: Record<string, string>
  readonly events: number
  readonly seed: number
}

type Hooks = { after: (fn: () => Promise<void>) => void; diagnostic: (message: string) => void }

export async function runTopology(t: Hooks, options: TopologyOptions, kill: boolean): Promise<void> {
  const { name, clickhouse, redis } = options
  const database = uniqueDatabase(`topology_${name}`)
  t.after(() => dropDatabase(clickhouse, database))
  const shared = {
    ...options.logEnv,
    REDIS_URL: redis.url,
    SPILLWAY_REDIS_KEY_PREFIX: `${database}:`,
    SPILLWAY_DELIVERY_LINGER_MS: '20',
  }
  // The serve nodes answer queries from the ClickHouse the consumer loads (queryStore, read-only).
  const serveEnv = {
    ...shared,
    SPILLWAY_SINKS: options.log,
    SPILLWAY_QUERY_STORE: 'clickhouse',
    CLICKHOUSE_URL: clickhouse.url,
    CLICKHOUSE_DATABASE: database,
  }
  const consumeEnv = {
    ...shared,
    SPILLWAY_SINKS: 'clickhouse',
    SPILLWAY_CONSUME_FROM: options.log,
    CLICKHOUSE_URL: clickhouse.url,
    CLICKHOUSE_DATABASE: database,
  }
  const serve: NodeHandle[] = [await startNode(t, serveEnv), await startNode(t, serveEnv)]
  if (!kill) {
    // Before the consumer made the table: a 503 (its reason, which names the table, goes to the
    // log only: public-errors.ts), and the node is ready all the same.
    const early = await fetch(`${serve[1].server.url}/metrics?event_name=${name}`)
    assert.equal(early.status, 503)
    assert.match(((await early.json()) as { error: string }).error, /query store is unavailable/)
    assert.equal((await fetch(`${serve[1].server.url}/ready`)).status, 200)
  }
  const consume = await startNode(t, consumeEnv, 'consume')
  const table = `\`${database}\`.events`
  const stored = async () => {
    const answer = await clickhouse
      .query(`SELECT uniqExact(event_id) FROM ${table} WHERE event_name = '${name}'`)
      .catch(() => '0')
    return Number(answer.trim())
  }

  const chaos = async ({ progress }: Chaos) => {
    await progress(0.3)
    serve[0].server.kill('SIGKILL')
    assert.equal((await serve[0].server.exited()).signal, 'SIGKILL')
    await progress(0.45)
    consume.server.kill('SIGKILL')
    assert.equal((await consume.server.exited()).signal, 'SIGKILL')
    await progress(0.6)
    Object.assign(serve[0], await serve[0].restart())
    await progress(0.75)
    Object.assign(consume, await consume.restart())
  }
  const plan = planSends(options.events, name, options.seed)
  const outcome = await runSends(plan, serve, { clients: 16, chaos: kill ? chaos : undefined })
  t.diagnostic(`${plan.length} sends, ${outcome.eventsSent} copies acked, ${outcome.failovers} fail-overs`)
  if (kill) assert.ok(outcome.failovers > 0, 'the kill hit requests for serve node 0')
  assert.equal(outcome.acked.size, options.events, 'every event acknowledged')

  await waitForStored(stored, options.events, 120_000)
  // A serve node (whose sinks are only the log) answers from ClickHouse, copies never counted.
  const ask = async (path: string) => {
    const answer = await fetch(`${serve[1].server.url}${path}`)
    assert.equal(answer.status, 200, path)
    return (await answer.json()) as Record<string, unknown>
  }
  const users = Math.min(options.events, 500) // two-nodes.ts eventOf: user_<n % 500>
  assert.deepEqual(await ask(`/metrics?event_name=${name}`), {
    event_name: name,
    total_events: options.events,
    unique_users: users,
  })
  assert.deepEqual((await ask(`/metrics/top?limit=1`))['data'], [
    { event_name: name, total_events: options.events, unique_users: users },
  ])
  const series = (await ask(`/metrics/series?event_name=${name}&bucket=day`))['data'] as {
    total_events: number
  }[]
  assert.equal(
    series.reduce((sum, row) => sum + row.total_events, 0),
    options.events,
  )
  for (const node of [...serve, consume]) await stopNode(node)
  const counts = await storedClickHouseCounts(clickhouse, database)
  t.diagnostic(`${counts.rowsBefore} rows inserted for ${counts.uniqueBefore} events before the final merge`)
  assertStoredOnce(counts.merged, outcome.acked, outcome.sent)
}

/** A log for the topology tests: started once per file, with the env that points a run at it. */
export interface TopologyLog {
  /** How the tests name it, e.g. `Kafka`. */
  readonly title: string
  readonly kind: 'kafka' | 'nats'
  start(): Promise<{ stop(): Promise<void>; env(name: string): Record<string, string> }>
}

/**
 * The two topology tests of a log, in one test file: Redis, ClickHouse and the log are started
 * before them and stopped after; each run gets its own database, topic/stream and group/consumer.
 */
export function topologyTests(log: TopologyLog, seed: number): void {
  const events = Number(process.env['TOPOLOGY_EVENTS'] ?? 3000)
  let redis: RedisServer
  let clickhouse: ClickHouseServer
  let running: Awaited<ReturnType<TopologyLog['start']>>
  before(async () => {
    ;[redis, clickhouse, running] = await Promise.all([startRedis(), startClickHouse(), log.start()])
  })
  after(() => Promise.all([redis.stop(), clickhouse.stop(), running.stop()]))
  const options = (name: string, seed: number): TopologyOptions => ({
    name,
    seed,
    events,
    clickhouse,
    redis,
    log: log.kind,
    logEnv: running.env(name),
  })
  test(`serve ×2 → ${log.title} → consume → ClickHouse: events sent to both nodes with repeats are stored once`, {
    timeout: 240_000,
  }, async (t) => {
    await runTopology(t, options(`${log.kind}plain`, seed), false)
  })
  test(`serve ×2 → ${log.title} → consume → ClickHouse, a serve node and the consumer SIGKILLed mid-way: stored once`, {
    timeout: 300_000,
  }, async (t) => {
    await runTopology(t, options(`${log.kind}kill`, seed + 1), true)
  })
}
