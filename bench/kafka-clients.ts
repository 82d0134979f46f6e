/**
 * Which Kafka client for the `kafka` sink and `consume --from kafka`: acked produce and consumer
 * group throughput of each candidate against one real broker (scripts/kafka.sh), in the same run.
 *
 * Produce: an idempotent producer, acks from all in-sync replicas, 200-byte JSON values keyed by a
 * uuid, sends of `--batch` messages awaited one after another (what the sink does with a delivery
 * batch) for `--seconds`, per compression. Consume: a new consumer group reads the topic the
 * produce run filled, from the earliest offset, for at most `--seconds`.
 *
 * The candidates are not dependencies of the project: install them in a scratch directory first
 * (the default is /tmp/kafka-clients) and point `--clients` at it:
 *   mkdir -p /tmp/kafka-clients && cd /tmp/kafka-clients && npm init -y &&
 *     npm install @platformatic/kafka kafkajs @confluentinc/kafka-javascript
 *   node bench/kafka-clients.ts [--clients /tmp/kafka-clients] [--seconds 10] [--batch 1000]
 * A candidate that is not installed there (or does not load: @confluentinc/kafka-javascript needs
 * a native binary from GitHub or a librdkafka build) is reported as such and skipped.
 */
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { parseArgs } from '../src/cli/args.ts'
import { BENCH_DIR, machine, round } from './lib.ts'

const run = promisify(execFile)
const SCRIPT = join(BENCH_DIR, '../scripts/kafka.sh')
const PARTITIONS = 6

interface Message {
  readonly key: Buffer
  readonly value: Buffer
}

/** What the benchmark needs of a client; one adapter per candidate below. */
interface Candidate {
  readonly name: string
  readonly version: string
  readonly compressions: readonly string[]
  createTopic(topic: string): Promise<void>
  producer(compression: string): Promise<{ send(messages: Message[]): Promise<void>; close(): Promise<void> }>
  /** Reads `topic` from the start in a new group until `count` messages or `seconds` passed. */
  consume(topic: string, count: number, seconds: number): Promise<Reading>
  close(): Promise<void>
}

// The candidates' APIs are typed loosely on purpose: they are loaded from outside the project.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Loose = any

/** A 200-byte event as the sink writes it (one normalized event per message), keyed by its id. */
function message(i: number): Message {
  const id = randomUUID()
  const head = `{"event_id":"${id}","event_name":"product_view","channel":"web","user_id":"user_${i % 10_000}","timestamp":1723475612,"tags":["bench"],"metadata":{"i":${i},"pad":"`
  const tail = '"}}'
  const pad = 'x'.repeat(Math.max(0, 200 - head.length - tail.length))
  return { key: Buffer.from(id), value: Buffer.from(head + pad + tail) }
}

async function load(dir: string, name: string): Promise<{ module: Loose; version: string }> {
  const require = createRequire(join(dir, 'package.json'))
  const entry = require.resolve(name)
  const manifest = join(dir, 'node_modules', name, 'package.json')
  const { version } = JSON.parse(await readFile(manifest, 'utf8')) as { version: string }
  return { module: await import(pathToFileURL(entry).href), version }
}

async function platformatic(dir: string, brokers: string): Promise<Candidate> {
  const { module: kafka, version } = await load(dir, '@platformatic/kafka')
  const base = { clientId: 'bench', bootstrapBrokers: [brokers] }
  const admin = new kafka.Admin(base)
  return {
    name: '@platformatic/kafka',
    version,
    compressions: ['lz4', 'zstd', 'snappy', 'gzip', 'none'],
    async createTopic(topic) {
      await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 })
    },
    async producer(compression) {
      const producer = new kafka.Producer({ ...base, idempotent: true, acks: -1, compression, retries: 3 })
      return {
        async send(messages) {
          await producer.send({ messages: messages.map((m) => ({ ...m, topic: currentTopic })) })
        },
        close: () => producer.close(),
      }
    },
    async consume(topic, count, seconds) {
      const consumer = new kafka.Consumer({ ...base, groupId: `bench-${randomUUID()}`, autocommit: false })
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest', maxWaitTime: 500 })
      const reading = new Reading()
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, seconds * 1000)
        stream.on('data', () => {
          reading.add(1)
          if (reading.count >= count) {
            clearTimeout(timer)
            resolve()
          }
        })
      })
      await stream.close()
      await consumer.close(true)
      return reading
    },
    close: () => admin.close(),
  }
}

async function kafkajs(dir: string, brokers: string): Promise<Candidate> {
  const { module: imported, version } = await load(dir, 'kafkajs')
  const { Kafka, CompressionTypes, logLevel } = imported.default ?? imported
  const client = new Kafka({ clientId: 'bench', brokers: [brokers], logLevel: logLevel.NOTHING })
  const admin = client.admin()
  await admin.connect()
  const codecs: Record<string, number> = { gzip: CompressionTypes.GZIP, none: CompressionTypes.None }
  return {
    name: 'kafkajs',
    version,
    // lz4, snappy and zstd need codec packages of their own (native ones for lz4/zstd).
    compressions: ['gzip', 'none'],
    async createTopic(topic) {
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] })
    },
    async producer(compression) {
      const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 })
      await producer.connect()
      return {
        async send(messages) {
          await producer.send({ topic: currentTopic, acks: -1, compression: codecs[compression], messages })
        },
        close: () => producer.disconnect(),
      }
    },
    async consume(topic, count, seconds) {
      const consumer = client.consumer({ groupId: `bench-${randomUUID()}`, maxWaitTimeInMs: 500 })
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      return readBatches(consumer, count, seconds, { autoCommit: false })
    },
    close: () => admin.disconnect(),
  }
}

/**
 * Runs a KafkaJS-style consumer (kafkajs, or Confluent's KafkaJS API) until it has read `count`
 * messages or `seconds` passed, then disconnects it.
 */
async function readBatches(
  consumer: Loose,
  count: number,
  seconds: number,
  runOptions: Record<string, unknown>,
): Promise<Reading> {
  const reading = new Reading()
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, seconds * 1000)
    consumer.run({
      ...runOptions,
      eachBatch: async ({ batch }: Loose) => {
        reading.add(batch.messages.length)
        if (reading.count >= count) {
          clearTimeout(timer)
          resolve()
        }
      },
    })
  })
  await consumer.disconnect()
  return reading
}

async function confluent(dir: string, brokers: string): Promise<Candidate> {
  const { module: imported, version } = await load(dir, '@confluentinc/kafka-javascript')
  const { Kafka } = (imported.default ?? imported).KafkaJS
  const client = new Kafka({ kafkaJS: { clientId: 'bench', brokers: [brokers], logLevel: 0 } })
  const admin = client.admin()
  await admin.connect()
  return {
    name: '@confluentinc/kafka-javascript',
    version,
    compressions: ['lz4', 'zstd', 'snappy', 'gzip', 'none'],
    async createTopic(topic) {
      await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }] })
    },
    async producer(compression) {
      const producer = client.producer({
        kafkaJS: {
          idempotent: true,
          acks: -1,
          compression: compression === 'none' ? undefined : compression,
        },
      })
      await producer.connect()
      return {
        async send(messages) {
          await producer.send({ topic: currentTopic, messages })
        },
        close: () => producer.disconnect(),
      }
    },
    async consume(topic, count, seconds) {
      const consumer = client.consumer({ kafkaJS: { groupId: `bench-${randomUUID()}`, fromBeginning: true } })
      await consumer.connect()
      await consumer.subscribe({ topic })
      return readBatches(consumer, count, seconds, {})
    },
    close: () => admin.disconnect(),
  }
}

let currentTopic = ''

/** Messages read, and the time from the first one to the last (the group join is not counted). */
class Reading {
  count = 0
  #first = 0
  #last = 0
  add(n: number): void {
    const now = performance.now()
    if (this.count === 0) this.#first = now
    this.#last = now
    this.count += n
  }
  get seconds(): number {
    return (this.#last - this.#first) / 1000
  }
}

async function produceFor(candidate: Candidate, compression: string, seconds: number, batch: number) {
  currentTopic = `bench-${candidate.name.replace(/\W/g, '')}-${compression}-${Date.now()}`
  await candidate.createTopic(currentTopic)
  const producer = await candidate.producer(compression)
  const pool = Array.from({ length: 20_000 }, (_, i) => message(i))
  // Warm up (connections, producer id, JIT) before the clock starts.
  await producer.send(pool.slice(0, batch))
  let sent = 0
  let bytes = 0
  const started = performance.now()
  const until = started + seconds * 1000
  while (performance.now() < until) {
    const from = (sent % pool.length) - ((sent % pool.length) % batch)
    const messages = pool.slice(from, from + batch)
    await producer.send(messages)
    sent += messages.length
    for (const m of messages) bytes += m.value.length
  }
  const elapsed = (performance.now() - started) / 1000
  await producer.close()
  return {
    topic: currentTopic,
    messages: sent + batch,
    msgsPerSec: round(sent / elapsed),
    mbPerSec: round(bytes / elapsed / 1e6, 1),
  }
}

export async function benchKafkaClients(clientsDir: string, seconds: number, batch: number) {
  const dir = await mkdtemp(join(process.env['BENCH_TMP'] ?? tmpdir(), 'spillway-bench-kafka-clients-'))
  const brokers = (await run('bash', [SCRIPT, 'start', dir], { timeout: 300_000 })).stdout.trim()
  const results: Record<string, unknown>[] = []
  try {
    for (const [name, make] of [
      ['@platformatic/kafka', platformatic],
      ['kafkajs', kafkajs],
      ['@confluentinc/kafka-javascript', confluent],
    ] as const) {
      let candidate: Candidate
      try {
        candidate = await make(clientsDir, brokers)
      } catch (error) {
        results.push({ client: name, error: `does not load: ${(error as Error).message.split('\n')[0]}` })
        continue
      }
      const produce: Record<string, unknown> = {}
      let filled: { topic: string; messages: number } | undefined
      for (const compression of candidate.compressions) {
        try {
          const result = await produceFor(candidate, compression, seconds, batch)
          produce[compression] = { msgsPerSec: result.msgsPerSec, mbPerSec: result.mbPerSec }
          filled ??= result
          process.stderr.write(`${name} ${compression}: ${result.msgsPerSec} msg/s\n`)
        } catch (error) {
          produce[compression] = { error: (error as Error).message }
        }
      }
      let consume: unknown = null
      if (filled) {
        const reading = await candidate.consume(filled.topic, filled.messages, seconds)
        consume = {
          messages: reading.count,
          of: filled.messages,
          msgsPerSec: reading.seconds > 0 ? round(reading.count / reading.seconds) : null,
        }
        process.stderr.write(`${name} consume: ${JSON.stringify(consume)}\n`)
      }
      await candidate.close()
      results.push({ client: name, version: candidate.version, produce, consume })
    }
  } finally {
    await run('bash', [SCRIPT, 'stop', dir])
    await rm(dir, { recursive: true, force: true })
  }
  return {
    benchmark: 'Kafka clients: idempotent acks=all produce and consumer-group read, one broker',
    machine: machine(),
    seconds,
    batch,
    valueBytes: 200,
    partitions: PARTITIONS,
    results,
  }
}

if (import.meta.main) {
  const { flags } = parseArgs(process.argv.slice(2))
  const report = await benchKafkaClients(
    flags['clients'] ?? '/tmp/kafka-clients',
    Number(flags['seconds'] ?? 10),
    Number(flags['batch'] ?? 1000),
  )
  console.log(JSON.stringify(report, null, 2))
}
