/**
 * The scale-out topology with NATS JetStream as the log: two `serve` nodes → JetStream → one
 * `consume` node → ClickHouse, Redis shared. Every acked event is in ClickHouse exactly once —
 * also with serve node 0 and the consume node SIGKILLed mid-way and restarted (helpers/topology.ts).
 */
import { after, before, test } from 'node:test'
import { type ClickHouseServer, startClickHouse } from '../helpers/clickhouse.ts'
import { type NatsServer, startNats } from '../helpers/nats.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { runTopology } from '../helpers/topology.ts'

let redis: RedisServer
let clickhouse: ClickHouseServer
let nats: NatsServer
before(async () => {
  ;[redis, clickhouse, nats] = await Promise.all([startRedis(), startClickHouse(), startNats()])
})
after(() => Promise.all([redis.stop(), clickhouse.stop(), nats.stop()]))

const EVENTS = Number(process.env['TOPOLOGY_EVENTS'] ?? 3000)

const topology = (name: string, seed: number) => ({
  name,
  seed,
  events: EVENTS,
  clickhouse,
  redis,
  log: 'nats' as const,
  logEnv: {
    NATS_URL: nats.url,
    SPILLWAY_NATS_STREAM: name.toUpperCase(),
    SPILLWAY_NATS_SUBJECT: `${name}.events`,
    SPILLWAY_NATS_CONSUMER: `${name}_loader`,
  },
})

test('serve ×2 → JetStream → consume → ClickHouse: events sent to both nodes with repeats are stored once', {
  timeout: 240_000,
}, async (t) => {
  await runTopology(t, topology('natsplain', 11), false)
})

test('serve ×2 → JetStream → consume → ClickHouse, a serve node and the consumer SIGKILLed mid-way: stored once', {
  timeout: 300_000,
}, async (t) => {
  await runTopology(t, topology('natskill', 12), true)
})
