/**
 * The scale-out topology with Kafka as the log: two `serve` nodes → Kafka → one
 * `consume` node → ClickHouse, Redis shared. Every acked event is in ClickHouse exactly once —
 * also with serve node 0 and the consume node SIGKILLed mid-way and restarted (helpers/topology.ts).
 */
import { after, before, test } from 'node:test'
import { type ClickHouseServer, startClickHouse } from '../helpers/clickhouse.ts'
import { type KafkaServer, startKafka } from '../helpers/kafka.ts'
import { type RedisServer, startRedis } from '../helpers/redis.ts'
import { runTopology } from '../helpers/topology.ts'

let redis: RedisServer
let clickhouse: ClickHouseServer
let kafka: KafkaServer
before(async () => {
  ;[redis, clickhouse, kafka] = await Promise.all([startRedis(), startClickHouse(), startKafka()])
})
after(() => Promise.all([redis.stop(), clickhouse.stop(), kafka.stop()]))

const EVENTS = Number(process.env['TOPOLOGY_EVENTS'] ?? 3000)

const topology = (name: string, seed: number) => ({
  name,
  seed,
  events: EVENTS,
  clickhouse,
  redis,
  log: 'kafka' as const,
  logEnv: {
    KAFKA_BROKERS: kafka.brokers,
    KAFKA_TOPIC: `${name}-events`,
    SPILLWAY_KAFKA_GROUP: `${name}-loader`,
  },
})

test('serve ×2 → Kafka → consume → ClickHouse: events sent to both nodes with repeats are stored once', {
  timeout: 240_000,
}, async (t) => {
  await runTopology(t, topology('kafkaplain', 21), false)
})

test('serve ×2 → Kafka → consume → ClickHouse, a serve node and the consumer SIGKILLed mid-way: stored once', {
  timeout: 300_000,
}, async (t) => {
  await runTopology(t, topology('kafkakill', 22), true)
})
