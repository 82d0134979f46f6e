/**
 * The Kafka log of `spillway consume --from kafka`: consumer group `kafkaGroup` on `kafkaTopic`
 * (the topic the `kafka` sink writes; it and the dead-letter topic are created when missing).
 *
 * Offsets: autocommit is off; `commit(batch)` commits, for each partition of the batch, the offset
 * past its last message — only after the batch is stored (consumer.ts). Commits never go back: an
 * offset at or below one this source already committed for a partition is skipped (after a
 * rebalance or a restarted stream the log hands out messages again, and their batches commit
 * offsets already passed). A commit that fails — a rebalance took the partition away, the broker
 * is down — is logged and forgotten: the messages come again to whoever owns the partition next,
 * and the dedup layers drop the copies. A new group starts at the earliest offset of each
 * partition; a known one at its committed offsets.
 *
 * Fetching: @platformatic/kafka's message stream, read in paused mode. It fetches ahead only while
 * its buffer holds fewer than `bufferedMessages` messages (two fetch batches by default), each
 * fetch at most FETCH_MAX_BYTES, so memory is bounded however far behind the consumer is. `fetch`
 * takes what the buffer has (up to `max`), waiting up to `waitMs` for the first message. When the
 * stream fails (the broker went away: the library ends the stream on a failed fetch), `fetch`
 * rejects with the reason and the next call opens a new stream from the committed offsets.
 *
 * Dead letters: messages `consume` cannot read as events are produced to the dead-letter topic
 * with the reason (`spillway.reason` and `spillway.topic` headers, as the sink writes them). They
 * are in the local dead-letter store already; a dead-letter produce that fails is logged, not
 * retried forever.
 *
 * Several `consume` nodes share the group: Kafka assigns each its partitions (the scale-out model).
 */
import { Admin, Consumer, type Message, type MessagesStream, Producer } from '@platformatic/kafka'
import type { Config } from '../config/schema.ts'
import {
  clientOptions,
  closeQuietly,
  describeBrokers,
  ensureTopics,
  REASON_HEADER,
  TOPIC_HEADER,
} from '../connectors/kafka/client.ts'
import { deadLetterTopic, type KafkaConnection, kafkaConnection } from '../connectors/kafka/config.ts'
import { describe } from '../connectors/kafka/errors.ts'
import { spillwayError } from '../errors.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { FetchedBatch, LogSource } from './source.ts'

/** Most bytes one fetch request asks for (Kafka returns at least one record batch regardless). */
export const FETCH_MAX_BYTES = 8 * 1024 * 1024
export const FETCH_MAX_BYTES_PER_PARTITION = 1024 * 1024
/** How long the broker holds a fetch open waiting for new messages. */
export const FETCH_MAX_WAIT_MS = 500
/** Group membership: a consumer that stops heartbeating loses its partitions after this long. */
export const SESSION_TIMEOUT_MS = 30_000
export const HEARTBEAT_INTERVAL_MS = 3_000
/** How long a rebalance waits for the members to rejoin (a JoinGroup request may block that long). */
export const REBALANCE_TIMEOUT_MS = 30_000

export interface KafkaSourceOptions {
  readonly connection: KafkaConnection
  readonly topic: string
  readonly deadLetterTopic: string
  readonly group: string
  /** Partitions and replication factor of the topics when the source creates them. */
  readonly partitions: number
  readonly replicationFactor: number
  /** Messages the stream buffers ahead of `fetch` at most. */
  readonly bufferedMessages: number
  /**
   * Static group membership (`group.instance.id`, KIP-345): the same id after a restart — even
   * after a SIGKILL — takes the node's partitions back at once, instead of the group waiting for
   * the dead member's session to time out. Absent: a dynamic member.
   */
  readonly instanceId?: string
  readonly logger: Logger
}

export function createKafkaSource(config: Config, logger: Logger, instanceId?: string): LogSource {
  return new KafkaSource({ ...kafkaSourceOptions(config, logger), instanceId })
}

export function kafkaSourceOptions(config: Config, logger: Logger): KafkaSourceOptions {
  return {
    connection: kafkaConnection(config, '`consume --from kafka`'),
    topic: config.kafkaTopic,
    deadLetterTopic: deadLetterTopic(config),
    group: config.kafkaGroup,
    partitions: config.kafkaPartitions,
    replicationFactor: config.kafkaReplicationFactor,
    bufferedMessages: 2 * config.consumeBatchMessages,
    logger,
  }
}

interface CommitOffset {
  readonly topic: string
  readonly partition: number
  /** Past the last message of the batch in this partition. */
  readonly offset: bigint
  readonly leaderEpoch: number
}

export class KafkaSource implements LogSource {
  readonly name = 'kafka'
  readonly #options: KafkaSourceOptions
  readonly #logger: Logger
  readonly #where: string
  #consumer: Consumer | null = null
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | null = null
  #opening: Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer>> | null = null
  /** Why the last stream ended, until a fetch reports it. */
  #streamError: Error | null = null
  #producer: Producer | null = null
  #closed = false
  /** Fetched batches not committed yet, in fetch order, with what committing each means. */
  readonly #held = new Map<FetchedBatch, CommitOffset[]>()
  /** The highest offset committed per `topic:partition`. */
  readonly #committed = new Map<string, bigint>()
  #wake: (() => void) | null = null

  constructor(options: KafkaSourceOptions) {
    this.#options = options
    this.#logger = options.logger
    this.#where = describeBrokers(options.connection)
  }

  get where(): string {
    return this.#where
  }

  /** Creates the topics when missing, joins the group and starts the stream. */
  async open(): Promise<void> {
    this.#closed = false
    const admin = new Admin(clientOptions(this.#options.connection))
    try {
      const spec = {
        partitions: this.#options.partitions,
        replicationFactor: this.#options.replicationFactor,
      }
      await ensureTopics(admin, [
        { name: this.#options.topic, ...spec },
        { name: this.#options.deadLetterTopic, ...spec },
      ])
    } catch (error) {
      throw this.#unavailable(error)
    } finally {
      await closeQuietly(() => admin.close())
    }
    await this.#openStream()
    this.#logger.info(
      {
        where: this.#where,
        topic: this.#options.topic,
        group: this.#options.group,
        assignments: this.#consumer?.assignments,
      },
      'KafkaConsumerJoined',
    )
  }

  async fetch(max: number, waitMs: number, signal: AbortSignal): Promise<FetchedBatch | null> {
    if (signal.aborted || this.#closed) return null
    const stream = await this.#openStream()
    const deadline = performance.now() + waitMs
    const taken: Message<Buffer, Buffer, Buffer, Buffer>[] = []
    const onAbort = () => this.#wakeUp()
    signal.addEventListener('abort', onAbort, { once: true })
    let timer: NodeJS.Timeout | undefined
    try {
      for (;;) {
        while (taken.length < max) {
          const message = stream.read() as Message<Buffer, Buffer, Buffer, Buffer> | null
          if (message === null) break
          taken.push(message)
        }
        if (taken.length > 0 || signal.aborted || this.#closed || this.#stream !== stream) break
        const left = deadline - performance.now()
        if (left <= 0) break
        await new Promise<void>((resolve) => {
          this.#wake = resolve
          timer = setTimeout(resolve, left)
        })
        clearTimeout(timer)
      }
    } finally {
      clearTimeout(timer)
      this.#wake = null
      signal.removeEventListener('abort', onAbort)
    }
    if (taken.length === 0) {
      if (this.#stream !== stream && !this.#closed && !signal.aborted) throw this.#takeStreamError()
      return null
    }
    const batch: FetchedBatch = {
      values: taken.map((m) => m.value ?? Buffer.alloc(0)),
      describe: describeBatch(taken),
    }
    this.#held.set(batch, commitOffsets(taken))
    return batch
  }

  /** Commits the offsets past `batch` (and every batch fetched before it); logs a failure. */
  async commit(batch: FetchedBatch): Promise<void> {
    if (!this.#held.has(batch))
      throw new Error(`KafkaSource.commit: ${batch.describe} was not fetched or is committed`)
    const latest = new Map<string, CommitOffset>()
    for (const [held, offsets] of this.#held) {
      this.#held.delete(held)
      for (const offset of offsets) latest.set(`${offset.topic}:${offset.partition}`, offset)
      if (held === batch) break
    }
    const offsets = [...latest].filter(([key, o]) => o.offset > (this.#committed.get(key) ?? -1n))
    if (offsets.length === 0) return
    const consumer = this.#consumer
    if (!consumer) {
      this.#logger.warn({ batch: batch.describe }, 'KafkaCommitSkipped')
      return
    }
    try {
      await consumer.commit({ offsets: offsets.map(([, o]) => o) })
      for (const [key, o] of offsets) this.#committed.set(key, o.offset)
    } catch (error) {
      // Not fatal (see the header): the messages come again, and dedup drops the copies.
      this.#logger.warn({ batch: batch.describe, err: this.#unavailable(error) }, 'KafkaCommitFailed')
    }
  }

  /** Produces each value to the dead-letter topic with the reason; logs a failure (see the header). */
  async deadLetter(values: readonly Buffer[], reason: string): Promise<void> {
    if (values.length === 0) return
    this.#producer ??= new Producer({ ...clientOptions(this.#options.connection), idempotent: true })
    try {
      await this.#producer.send({
        messages: values.map((value) => ({
          topic: this.#options.deadLetterTopic,
          value,
          headers: new Map([
            [Buffer.from(REASON_HEADER), Buffer.from(reason, 'utf8')],
            [Buffer.from(TOPIC_HEADER), Buffer.from(this.#options.topic, 'utf8')],
          ]),
        })),
      })
    } catch (error) {
      this.#logger.warn(
        {
          topic: this.#options.deadLetterTopic,
          messages: values.length,
          reason,
          err: this.#unavailable(error),
        },
        'KafkaDeadLetterFailed',
      )
    }
  }

  /** A metadata request for the topic within `kafkaTimeoutMs`. */
  async ping(): Promise<void> {
    const consumer = this.#consumer
    if (!consumer) throw spillwayError('SPW_ERR_SINK_UNAVAILABLE', 'the Kafka source is not open')
    const timeoutMs = this.#options.connection.timeoutMs
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        consumer.metadata({ topics: [this.#options.topic], forceUpdate: true }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
        }),
      ])
    } catch (error) {
      throw this.#unavailable(error)
    } finally {
      clearTimeout(timer)
    }
  }

  /** Stops the stream and leaves the group: what was not committed goes to the next owner. */
  async close(): Promise<void> {
    this.#closed = true
    this.#wakeUp()
    const stream = this.#stream
    const consumer = this.#consumer
    const producer = this.#producer
    this.#stream = null
    this.#consumer = null
    this.#producer = null
    this.#opening = null
    this.#held.clear()
    await closeQuietly(() => stream?.close() ?? Promise.resolve())
    await closeQuietly(() => consumer?.close(true) ?? Promise.resolve())
    await closeQuietly(() => producer?.close() ?? Promise.resolve())
  }

  /** The running stream, or a new one from the committed offsets (joining the group if needed). */
  #openStream(): Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer>> {
    if (this.#closed)
      return Promise.reject(spillwayError('SPW_ERR_SINK_UNAVAILABLE', 'the Kafka source is closed'))
    if (this.#stream) return Promise.resolve(this.#stream)
    if (!this.#opening) {
      const opening = (async () => {
        const base = clientOptions(this.#options.connection)
        this.#consumer ??= new Consumer({
          ...base,
          // A JoinGroup answers when the rebalance is done: give it the rebalance's time.
          requestTimeout: Math.max(base.requestTimeout ?? 0, REBALANCE_TIMEOUT_MS + 2000),
          groupId: this.#options.group,
          ...(this.#options.instanceId ? { groupInstanceId: this.#options.instanceId } : {}),
          autocommit: false,
          sessionTimeout: SESSION_TIMEOUT_MS,
          rebalanceTimeout: REBALANCE_TIMEOUT_MS,
          heartbeatInterval: HEARTBEAT_INTERVAL_MS,
        })
        let stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>
        try {
          stream = await this.#consumer.consume({
            topics: [this.#options.topic],
            mode: 'committed',
            fallbackMode: 'earliest',
            autocommit: false,
            maxWaitTime: FETCH_MAX_WAIT_MS,
            maxBytes: FETCH_MAX_BYTES,
            maxBytesPerPartition: FETCH_MAX_BYTES_PER_PARTITION,
            highWaterMark: Math.max(1, this.#options.bufferedMessages),
          })
        } catch (error) {
          // The same consumer tries again next time: a new one would be a new member, and the
          // group would wait for the old one's session to expire before it hands out partitions.
          if (this.#consumer?.closed) this.#consumer = null
          throw this.#unavailable(error)
        }
        const ended = (error?: Error) => {
          if (this.#stream !== stream) return
          this.#stream = null
          this.#streamError = error ?? null
          this.#logger.warn({ err: error && this.#unavailable(error) }, 'KafkaStreamEnded')
          this.#wakeUp()
        }
        stream.on('readable', () => this.#wakeUp())
        stream.on('error', ended)
        stream.on('close', () => ended())
        if (this.#closed) {
          await closeQuietly(() => stream.close())
          throw spillwayError('SPW_ERR_SINK_UNAVAILABLE', 'the Kafka source is closed')
        }
        this.#stream = stream
        return stream
      })()
      this.#opening = opening
      opening
        .catch(() => {})
        .finally(() => {
          if (this.#opening === opening) this.#opening = null
        })
    }
    return this.#opening
  }

  #takeStreamError(): Error {
    const error = this.#streamError
    this.#streamError = null
    return this.#unavailable(error ?? new Error('the message stream ended'))
  }

  #wakeUp(): void {
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  #unavailable(error: unknown): Error {
    if ((error as { code?: string }).code?.startsWith('SPW_ERR_')) return error as Error
    return spillwayError('SPW_ERR_SINK_UNAVAILABLE', `Kafka at ${this.#where} failed: ${describe(error)}`, {
      cause: error,
    })
  }
}

/** Per partition, the offset past the batch's last message there. */
function commitOffsets(messages: readonly Message<Buffer, Buffer, Buffer, Buffer>[]): CommitOffset[] {
  const last = new Map<string, CommitOffset>()
  for (const m of messages) {
    const key = `${m.topic}:${m.partition}`
    const offset = m.offset + 1n
    const previous = last.get(key)
    if (!previous || previous.offset < offset) {
      last.set(key, { topic: m.topic, partition: m.partition, offset, leaderEpoch: m.leaderEpoch })
    }
  }
  return [...last.values()]
}

/** `events[0]@12..40 [3]@7..9`: per partition, the first and last offsets. */
function describeBatch(messages: readonly Message<Buffer, Buffer, Buffer, Buffer>[]): string {
  const ranges = new Map<number, [bigint, bigint]>()
  for (const m of messages) {
    const range = ranges.get(m.partition)
    if (!range) ranges.set(m.partition, [m.offset, m.offset])
    else {
      if (m.offset < range[0]) range[0] = m.offset
      if (m.offset > range[1]) range[1] = m.offset
    }
  }
  const parts = [...ranges]
    .sort((a, b) => a[0] - b[0])
    .map(([p, [first, last]]) => `[${p}]@${first}..${last}`)
  return `${messages[0].topic}${parts.join(' ')}`
}
