/**
 * What the `kafka` sink and `consume --from kafka` share on top of @platformatic/kafka: the client
 * options from a KafkaConnection, topic creation, and the partition of a key (how its errors read:
 * errors.ts).
 *
 * Topics. `ensureTopics` lists the topics and creates the missing ones with the configured
 * partitions and replication factor (an existing topic is left as it is; a creation raced by
 * another node — TOPIC_ALREADY_EXISTS — is fine), then reads each topic's partition count and
 * `max.message.bytes` (the largest record batch the broker takes, after compression), which the
 * sink cuts its produce requests by. Reading the limit needs DescribeConfigs; without the right
 * the broker default (1 MB) is assumed, and a refusal is still handled by isolating the refused
 * events (src/sinks/kafka/sink.ts).
 *
 * Partitions. A key goes to `murmur2(key) & 0x7fffffff % partitions`, the partitioner of the Java
 * client (and of librdkafka's `murmur2_random`), so every Spillway node — and any other producer
 * keyed the same way — sends the copies of one event to the same partition.
 */
import { type Admin, type BaseOptions, ConfigResourceTypes } from '@platformatic/kafka'
import type { KafkaConnection } from './config.ts'
import { leaves } from './errors.ts'

/** Header of a dead-lettered record: why it was refused. */
export const REASON_HEADER = 'spillway.reason'
/** Header of a dead-lettered record: the topic it was meant for (or read from). */
export const TOPIC_HEADER = 'spillway.topic'

/** The broker's default `message.max.bytes`, assumed when a topic's limit cannot be read. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588

/** Options every client of ours starts from; the library's own retries are few and short. */
export function clientOptions(connection: KafkaConnection, retries = 2): BaseOptions {
  return {
    clientId: connection.clientId,
    bootstrapBrokers: [...connection.brokers],
    timeout: connection.timeoutMs,
    connectTimeout: connection.timeoutMs,
    // A produce with acks=all may take the broker its whole `timeout`: leave room for the answer.
    requestTimeout: connection.timeoutMs + 2000,
    retries,
    retryDelay: 250,
    autocreateTopics: false,
    ...(connection.tls && { tls: connection.tls.ca ? { ca: connection.tls.ca } : {} }),
    ...(connection.sasl && {
      sasl: {
        mechanism: connection.sasl.mechanism,
        username: connection.sasl.username,
        password: connection.sasl.password,
      },
    }),
  }
}

/** `host:port, …` for messages and logs (never credentials: they are not in the broker list). */
export function describeBrokers(connection: KafkaConnection): string {
  return connection.brokers.join(',')
}

export interface TopicSpec {
  readonly name: string
  readonly partitions: number
  readonly replicationFactor: number
}

export interface TopicInfo {
  readonly partitions: number
  readonly maxMessageBytes: number
}

/** Creates the missing topics; answers each one's partition count and `max.message.bytes`. */
export async function ensureTopics(
  admin: Admin,
  specs: readonly TopicSpec[],
): Promise<Map<string, TopicInfo>> {
  const existing = new Set(await admin.listTopics({ includeInternals: false }))
  const missing = specs.filter((spec) => !existing.has(spec.name))
  for (const spec of missing) {
    try {
      await admin.createTopics({
        topics: [spec.name],
        partitions: spec.partitions,
        replicas: spec.replicationFactor,
      })
    } catch (error) {
      if (!leaves(error).some((leaf) => leaf.apiId === 'TOPIC_ALREADY_EXISTS')) throw error
    }
  }
  const names = specs.map((spec) => spec.name)
  // A topic just created may take a moment to show in the metadata of every broker.
  let metadata = await admin.metadata({ topics: names, forceUpdate: true }).catch(() => null)
  for (let attempt = 0; !metadata && attempt < 20; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    metadata = await admin.metadata({ topics: names, forceUpdate: true }).catch((error) => {
      if (attempt === 19) throw error
      return null
    })
  }
  const limits = await maxMessageBytes(admin, names)
  const info = new Map<string, TopicInfo>()
  for (const name of names) {
    const topic = metadata!.topics.get(name)
    if (!topic) throw new Error(`topic ${name} is not in the metadata`)
    info.set(name, {
      partitions: topic.partitionsCount,
      maxMessageBytes: limits.get(name) ?? DEFAULT_MAX_MESSAGE_BYTES,
    })
  }
  return info
}

async function maxMessageBytes(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  const limits = new Map<string, number>()
  try {
    const described = await admin.describeConfigs({
      resources: topics.map((name) => ({
        resourceType: ConfigResourceTypes.TOPIC,
        resourceName: name,
        configurationKeys: ['max.message.bytes'],
      })),
    })
    for (const resource of described) {
      const value = Number(resource.configs.find((c) => c.name === 'max.message.bytes')?.value)
      if (Number.isSafeInteger(value) && value > 0) limits.set(resource.resourceName, value)
    }
  } catch {
    // No DescribeConfigs right: the default is assumed (see the header).
  }
  return limits
}

/** The Java client's partition of a key. */
export function partitionOf(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions
}

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit integer, in
 * 32-bit arithmetic (the library's own port works in BigInt: a few µs a key, too slow per event).
 */
export function murmur2(data: Buffer): number {
  const m = 0x5bd1e995
  const length = data.length
  let h = 0x9747b28c ^ length
  const whole = length & ~3
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
    k = Math.imul(k, m)
    k ^= k >>> 24
    k = Math.imul(k, m)
    h = Math.imul(h, m) ^ k
  }
  switch (length & 3) {
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: the reference falls through
    case 3:
      h ^= data[whole + 2] << 16
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: the reference falls through
    case 2:
      h ^= data[whole + 1] << 8
    case 1:
      h ^= data[whole]
      h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

/** Closes a client, ignoring its failure (it is going away either way). */
export async function closeQuietly(close: (() => Promise<void>) | undefined): Promise<void> {
  try {
    await close?.()
  } catch {}
}
