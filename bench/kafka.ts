/**
 * Acked events/s into Kafka from one Spillway node, against a real broker started for the run
 * (scripts/kafka.sh: one KRaft node; data under BENCH_TMP or the temp dir), with a baseline
 * measured in the same run:
 * - baseline: the raw client (@platformatic/kafka, the one the sink uses) producing the same
 *   records the sink makes of a delivery batch of 20k events — WAL lines keyed by event_id, cut
 *   into the same produce requests (records.ts), idempotent, acks=all, same compression — awaited
 *   one after another, straight from memory: the ceiling of the client and the broker here.
 * - delivery under load: wrk sends NDJSON batches of 1000 events (bench/wrk/clickhouse-batch.lua,
 *   whose RUN prefix keeps ids unique across runs) to a Spillway whose only sink is Kafka, for
 *   `--seconds`; the records in the topic (the sum of its partitions' end offsets) are sampled
 *   every second until everything accepted is there. Intake, delivery, the broker and wrk share
 *   the machine's cores here.
 * - backlog drain: the broker is stopped, wrk fills the WAL for `--seconds`, the broker comes
 *   back, and the time until the backlog is in the topic gives the sustained delivery rate with
 *   the machine to delivery and the broker alone.
 * Ratios: delivery rates over the baseline's.
 *   node bench/kafka.ts [--seconds 15] [--connections 8] [--compression lz4]
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Admin, Consumer, ProduceAcks, Producer } from '@platformatic/kafka'
import { parseArgs } from '../src/cli/args.ts'
import { clientOptions, DEFAULT_MAX_MESSAGE_BYTES } from '../src/connectors/kafka/client.ts'
import type { KafkaConnection } from '../src/connectors/kafka/config.ts'
import { encodeEvents } from '../src/intake/serialize.ts'
import type { NormalizedEvent } from '../src/intake/types.ts'
import type { KafkaCompression } from '../src/sinks/kafka/config.ts'
import { batchRecords, chunkLimit, cutRounds } from '../src/sinks/kafka/records.ts'
import {
  BENCH_DIR,
  benchEvent,
  ensureWrk,
  machine,
  round,
  startSpillway,
  stopGracefully,
  waitForCount,
  wrk,
} from './lib.ts'
import { loadAndDrain } from './ndjson-batch.ts'

const run = promisify(execFile)
const SCRIPT = join(BENCH_DIR, '../scripts/kafka.sh')
const BATCH = 1000
const SEND_RECORDS = 20_000
const PARTITIONS = 6

export async function benchKafka(seconds = 15, connections = 8, compression: KafkaCompression = 'lz4') {
  await ensureWrk()
  const dir = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'spillway-bench-kafka-'))
  const brokers = (await run('bash', [SCRIPT, 'start', dir], { timeout: 300_000 })).stdout.trim()
  const port = brokers.split(':').pop()!
  const connection: KafkaConnection = { brokers: [brokers], clientId: 'bench', timeoutMs: 10_000 }
  const topic = `bench-${Date.now()}`
  const counter = new TopicCounter(connection, topic)
  try {
    const baseline = await baselineProduce(connection, compression, seconds)
    const server = await startSpillway({
      SPILLWAY_SINKS: 'kafka',
      KAFKA_BROKERS: brokers,
      KAFKA_TOPIC: topic,
      SPILLWAY_KAFKA_COMPRESSION: compression,
      SPILLWAY_KAFKA_PARTITIONS: String(PARTITIONS),
      // The drain phase stops the broker: try again soon after it is back.
      SPILLWAY_BREAKER_MAX_OPEN_MS: '1000',
    })
    const load = await loadAndDrain({
      url: server.url,
      lua: 'clickhouse-batch.lua',
      luaEnv: { RUN: `load${Date.now()}` },
      seconds,
      connections,
      stored: () => counter.count(),
      drainTimeoutMs: 300_000,
    })
    const drain = await measureDrain(dir, port, server.url, counter, seconds, connections)
    await stopGracefully(server)
    await rm(server.dataDir, { recursive: true, force: true })
    return {
      benchmark: 'Kafka sink: acked events/s into Kafka from one node',
      machine: machine(),
      kafka: process.env['SPILLWAY_KAFKA_VERSION'] ?? '4.4.0 (scripts/kafka.sh default)',
      seconds,
      connections,
      compression,
      partitions: PARTITIONS,
      baseline: { rawClientRecordsPerSec: baseline.recordsPerSec, recordsPerSend: SEND_RECORDS },
      delivery: {
        acceptedEventsPerSec: load.eventsPerSec,
        p99Ms: load.p99Ms,
        non2xx: load.non2xx,
        accepted: load.accepted,
        inTopic: load.stored,
        deliveryEventsPerSec: load.deliveryRowsPerSec,
        deliveryEventsPerSecDuringLoad: load.deliveryRowsPerSecDuringLoad,
        drainSecondsAfterLoad: load.drainSecondsAfterLoad,
      },
      drain,
      ratio: {
        drainOverBaseline: round(drain.deliveryEventsPerSec / baseline.recordsPerSec, 2),
        underLoadOverBaseline: round(load.deliveryRowsPerSec / baseline.recordsPerSec, 2),
      },
    }
  } finally {
    await counter.close()
    await run('bash', [SCRIPT, 'stop', dir])
    await rm(dir, { recursive: true, force: true })
  }
}

/** The raw client alone: the sink's records (WAL lines keyed by event_id), pre-built, sent back to back. */
async function baselineProduce(connection: KafkaConnection, compression: KafkaCompression, seconds: number) {
  const topic = `baseline-${randomUUID()}`
  const admin = new Admin(clientOptions(connection))
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 })
  await admin.close()
  const producer = new Producer({
    ...clientOptions(connection),
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression,
  })
  const now = Math.floor(Date.now() / 1000) - 60
  const sends = Array.from({ length: 10 }, (_, b) => {
    const events: NormalizedEvent[] = Array.from({ length: SEND_RECORDS }, (_, i) => {
      const n = b * SEND_RECORDS + i
      return benchEvent(n, `base-${randomUUID()}`, 'bench_kafka', now)
    })
    const records = batchRecords({ events, ndjson: encodeEvents(events), from: 0, to: 1 }, PARTITIONS)
    // The produce requests the sink makes of a batch (records.ts), without Spillway around them.
    return cutRounds(records, chunkLimit(DEFAULT_MAX_MESSAGE_BYTES)).map((round) =>
      round.flat().map((r) => ({ ...r, topic })),
    )
  })
  await producer.send({ messages: sends[0][0].slice(0, 1000) })
  let records = 0
  const started = performance.now()
  for (let i = 0; performance.now() - started < seconds * 1000; i++) {
    for (const messages of sends[i % sends.length]) {
      await producer.send({ messages })
      records += messages.length
    }
  }
  const elapsed = (performance.now() - started) / 1000
  await producer.close()
  return { recordsPerSec: round(records / elapsed) }
}

/** Records in the topic now (end offsets summed over its partitions), with one long-lived client. */
class TopicCounter {
  readonly #consumer: Consumer
  readonly #topic: string
  constructor(connection: KafkaConnection, topic: string) {
    this.#consumer = new Consumer({ ...clientOptions(connection, 5), groupId: `bench-${randomUUID()}` })
    this.#topic = topic
  }
  async count(): Promise<number> {
    try {
      const offsets = await this.#consumer.listOffsets({ topics: [this.#topic] })
      return (offsets.get(this.#topic) ?? []).reduce((sum, offset) => sum + Number(offset), 0)
    } catch {
      return 0 // not created yet, or the broker is stopped (drain phase)
    }
  }
  close(): Promise<void> {
    return this.#consumer.close(true)
  }
}

/** Stop the broker, fill the WAL, start the broker again, time the drain. */
async function measureDrain(
  dir: string,
  port: string,
  spillwayUrl: string,
  counter: TopicCounter,
  seconds: number,
  connections: number,
) {
  const before = await counter.count()
  await run('bash', [SCRIPT, 'stop', dir])
  const env = { BATCH: String(BATCH), RUN: `drain${Date.now()}` }
  const load = await wrk(`${spillwayUrl}/events/batch`, 'clickhouse-batch.lua', { seconds, connections, env })
  const accepted = (load.requests - load.non2xx) * BATCH
  await run('bash', [SCRIPT, 'start', dir, port], { timeout: 120_000 })
  const started = performance.now()
  const { last, seconds: elapsed } = await waitForCount(
    () => counter.count(),
    before,
    before + accepted,
    started,
    'events',
  )
  return {
    backlogEvents: accepted,
    acceptedEventsPerSecWithoutDelivery: round(load.requestsPerSec * BATCH),
    drainSeconds: round(elapsed, 1),
    deliveryEventsPerSec: round((last - before) / elapsed),
  }
}

if (import.meta.main) {
  const { flags } = parseArgs(process.argv.slice(2))
  const report = await benchKafka(
    Number(flags['seconds'] ?? 15),
    Number(flags['connections'] ?? 8),
    (flags['compression'] ?? 'lz4') as KafkaCompression,
  )
  console.log(JSON.stringify(report, null, 2))
}
