/**
 * A real Apache Kafka for a test file: one KRaft node started by the project's own script
 * (scripts/kafka.sh, which fetches the broker's jars from Maven Central when they are missing) on
 * a free port, data in a temp dir, stopped by PID when the test file ends; plus what tests need to
 * look at a topic (create one, read all of it back with keys and headers, count it).
 */
import { randomUUID } from 'node:crypto'
import { Admin, Consumer, ListOffsetTimestamps } from '@platformatic/kafka'
import { type ScriptService, startScriptService } from './script-service.ts'

/** A private KRaft broker (scripts/kafka.sh): `127.0.0.1:<port>` as `kafkaBrokers` takes it, and pause/start for a restart. */
export type KafkaServer = Omit<ScriptService, 'address'> & { readonly brokers: string }

export async function startKafka(): Promise<KafkaServer> {
  const { address, ...service } = await startScriptService('kafka', 300_000)
  return { brokers: address, ...service }
}

function base(brokers: string) {
  return { clientId: 'spillway-test', bootstrapBrokers: [brokers], retries: 5, retryDelay: 200 }
}

/** Creates a topic (`configs`: topic settings such as `max.message.bytes`). */
export async function createTopic(
  brokers: string,
  topic: string,
  options: { partitions?: number; configs?: Record<string, string> } = {},
): Promise<void> {
  const admin = new Admin(base(brokers))
  try {
    await admin.createTopics({
      topics: [topic],
      partitions: options.partitions ?? 1,
      replicas: 1,
      configs: Object.entries(options.configs ?? {}).map(([name, value]) => ({ name, value })),
    })
  } finally {
    await admin.close()
  }
}

export async function listTopics(brokers: string): Promise<string[]> {
  const admin = new Admin(base(brokers))
  try {
    return await admin.listTopics()
  } finally {
    await admin.close()
  }
}

/** Records in a topic now: the sum over its partitions of end offset − start offset. */
export async function countTopic(brokers: string, topic: string): Promise<number> {
  const { start, end } = await offsets(brokers, topic)
  let count = 0
  for (let i = 0; i < end.length; i++) count += Number(end[i] - start[i])
  return count
}

async function offsets(brokers: string, topic: string): Promise<{ start: bigint[]; end: bigint[] }> {
  const consumer = new Consumer({ ...base(brokers), groupId: `spillway-test-${randomUUID()}` })
  try {
    const end = (await consumer.listOffsets({ topics: [topic] })).get(topic)!
    const start = (
      await consumer.listOffsets({ topics: [topic], timestamp: ListOffsetTimestamps.EARLIEST })
    ).get(topic)!
    return { start, end }
  } finally {
    await consumer.close(true)
  }
}

export interface ReadRecord {
  readonly key: string
  readonly value: string
  readonly headers: Readonly<Record<string, string>>
  readonly partition: number
  readonly offset: bigint
}

/** Every record of a topic, as it is now (read in a new consumer group; in offset order per partition). */
export async function readTopic(brokers: string, topic: string, timeoutMs = 30_000): Promise<ReadRecord[]> {
  const { start, end } = await offsets(brokers, topic)
  let expected = 0
  for (let i = 0; i < end.length; i++) expected += Number(end[i] - start[i])
  if (expected === 0) return []
  const consumer = new Consumer({ ...base(brokers), groupId: `spillway-test-${randomUUID()}` })
  const records: ReadRecord[] = []
  try {
    const stream = await consumer.consume({
      topics: [topic],
      mode: 'earliest',
      autocommit: false,
      maxWaitTime: 200,
    })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`read ${records.length} of ${expected} records of ${topic} in ${timeoutMs} ms`)),
        timeoutMs,
      )
      stream.on('error', reject)
      stream.on('data', (message) => {
        const headers: Record<string, string> = {}
        for (const [name, value] of message.headers) headers[name.toString()] = value.toString()
        records.push({
          key: message.key?.toString() ?? '',
          value: message.value?.toString() ?? '',
          headers,
          partition: message.partition,
          offset: message.offset,
        })
        if (records.length >= expected) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    await stream.close()
  } finally {
    await consumer.close(true)
  }
  return records
}
