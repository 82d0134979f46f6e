/**
 * The `kafka` sink: every event becomes one record of `topic`, keyed by its `event_id`, the value
 * being the WAL's NDJSON line as it is (records.ts). Copies of an event (a retry after a timeout,
 * a replay after a crash) land in the same partition under the same key, so a consumer — Spillway's
 * own `consume`, or a compacted topic — drops them by key (G3, docs/ARCHITECTURE.md "Duplicates").
 *
 * Producer. One idempotent producer (acks from all in-sync replicas, the producer id and sequence
 * numbers let the broker drop the copies of a request the client sends again), with the configured
 * compression. A SinkBatch is produced in a few produce requests (records.ts), awaited one after
 * another; `write` answers only when every record of the batch is written (or dead-lettered). The
 * library retries a failed request a couple of times; past that the verdict is `retry` and the
 * delivery loop backs off and sends the batch again (records that were written go again: at least
 * once, same keys).
 *
 * Refused events. When Kafka refuses a partition batch as data (verdict.ts), the sink cuts it in
 * halves and sends them again until the refused event stands alone; that event goes to the
 * dead-letter topic with its key, its value and the reason (`spillway.reason` and `spillway.topic`
 * headers), and the batch is `delivered`. Should the dead-letter topic refuse it too (an event
 * larger than both topics take), the verdict is `permanent`: delivery then halves the batch itself
 * and keeps the event in the local dead-letter store.
 *
 * Topics. The topic and the dead-letter topic are created when missing (partitions, replication
 * factor), at open and again after any failed write; a broker that does not answer at start is an
 * outage (logged, retried), not a failed start. `ping` is a metadata request for the topic.
 */
import { Admin, ProduceAcks, Producer } from '@platformatic/kafka'
import { pino } from 'pino'
import {
  clientOptions,
  closeQuietly,
  describeBrokers,
  ensureTopics,
  REASON_HEADER,
  TOPIC_HEADER,
  type TopicInfo,
} from '../../connectors/kafka/client.ts'
import type { KafkaConnection } from '../../connectors/kafka/config.ts'
import { describe, describeCode } from '../../connectors/kafka/errors.ts'
import { spillwayError } from '../../errors.ts'
import type { Logger } from '../../telemetry/logger.ts'
import { delivered, type Sink, type SinkBatch, type Verdict } from '../sink.ts'
import { KAFKA_SINK_DEFAULTS, type KafkaSinkOptions } from './config.ts'
import { batchRecords, chunkLimit, cutRounds, type OutgoingRecord, type Round } from './records.ts'
import { type Failed, judge, partitionResults, REFUSED_CODES, retryVerdict, unavailable } from './verdict.ts'

export class KafkaSink implements Sink {
  readonly name: string
  readonly acceptsNdjson = true
  readonly topic: string
  readonly deadLetterTopic: string
  readonly #connection: KafkaConnection
  readonly #options: KafkaSinkOptions
  readonly #logger: Logger
  readonly #where: string
  #producer: Producer | null = null
  #admin: Admin | null = null
  #topics: Promise<TopicInfo> | null = null

  constructor(options: KafkaSinkOptions) {
    this.name = options.name ?? KAFKA_SINK_DEFAULTS.name
    this.topic = options.topic
    this.deadLetterTopic = options.deadLetterTopic || `${options.topic}.dead-letter`
    this.#connection = options.connection
    this.#options = options
    this.#logger = options.logger ?? pino({ level: 'silent' })
    this.#where = describeBrokers(options.connection)
  }

  /** Makes the clients and tries the brokers once: brokers that do not answer are logged, not fatal. */
  async open(): Promise<void> {
    this.#producer ??= new Producer({
      ...clientOptions(this.#connection),
      idempotent: true,
      acks: ProduceAcks.ALL,
      compression: this.#options.compression ?? KAFKA_SINK_DEFAULTS.compression,
    })
    this.#admin ??= new Admin(clientOptions(this.#connection))
    try {
      await this.#ready()
    } catch (error) {
      this.#logger.warn(
        { sink: this.name, where: this.#where, err: unavailable(this.name, this.#where, error) },
        'KafkaUnavailableAtStart',
      )
    }
  }

  /** The topic's partitions and size limit, once both topics exist (checked on first use). */
  #ready(): Promise<TopicInfo> {
    const admin = this.#admin
    if (!admin) return Promise.reject(notOpen(this.name))
    if (!this.#topics) {
      const spec = {
        partitions: this.#options.partitions ?? KAFKA_SINK_DEFAULTS.partitions,
        replicationFactor: this.#options.replicationFactor ?? KAFKA_SINK_DEFAULTS.replicationFactor,
      }
      const pending = ensureTopics(admin, [
        { name: this.topic, ...spec },
        { name: this.deadLetterTopic, ...spec },
      ]).then((topics) => {
        const info = topics.get(this.topic)!
        this.#logger.info(
          {
            sink: this.name,
            where: this.#where,
            topic: this.topic,
            deadLetterTopic: this.deadLetterTopic,
            ...info,
          },
          'KafkaSinkConnected',
        )
        return info
      })
      this.#topics = pending
      pending.catch(() => {
        if (this.#topics === pending) this.#topics = null
      })
    }
    return this.#topics
  }

  async write(batch: SinkBatch): Promise<Verdict> {
    if (!this.#producer) throw notOpen(this.name)
    let info: TopicInfo
    try {
      info = await this.#ready()
    } catch (error) {
      return retryVerdict(this.name, this.#where, error)
    }
    const records = batchRecords(batch, info.partitions)
    if (records.length === 0) return delivered
    for (const round of cutRounds(records, chunkLimit(info.maxMessageBytes))) {
      const verdict = await this.#produceRound(round)
      if (verdict) {
        if (verdict.kind === 'retry') this.#topics = null
        this.#logger.debug(
          { sink: this.name, from: batch.from, to: batch.to, verdict: verdict.kind, err: verdict.error },
          'KafkaProduceFailed',
        )
        return verdict
      }
    }
    return delivered
  }

  /** One produce request; null when every record is written or dead-lettered, else the verdict. */
  async #produceRound(round: Round): Promise<Failed | null> {
    try {
      await this.#send(round.flat())
      return null
    } catch (error) {
      if (judge(error) === 'auth') return retryVerdict(this.name, this.#where, error)
      const results = partitionResults(error, this.topic)
      const refused: [OutgoingRecord[], string][] = []
      for (const chunk of round) {
        const result = results.get(chunk[0].partition)
        if (result && !result.error) continue
        if (!result?.error || !REFUSED_CODES.has(result.error))
          return retryVerdict(this.name, this.#where, error)
        refused.push([chunk, describeCode(result.error, result.message)])
      }
      for (const [chunk, reason] of refused) {
        const verdict = await this.#isolate(chunk, reason)
        if (verdict) return verdict
      }
      return null
    }
  }

  /** `chunk` (one partition's records) was refused as data: find the refused records (header). */
  async #isolate(chunk: OutgoingRecord[], reason: string): Promise<Failed | null> {
    if (chunk.length === 1) return this.#deadLetter(chunk[0], reason)
    const middle = chunk.length >>> 1
    for (const half of [chunk.slice(0, middle), chunk.slice(middle)]) {
      try {
        await this.#send(half)
      } catch (error) {
        if (judge(error) !== 'refused') return retryVerdict(this.name, this.#where, error)
        const verdict = await this.#isolate(half, describe(error))
        if (verdict) return verdict
      }
    }
    return null
  }

  async #deadLetter(record: OutgoingRecord, reason: string): Promise<Failed | null> {
    const key = record.key.toString('utf8')
    try {
      await this.#producer!.send({
        messages: [
          {
            topic: this.deadLetterTopic,
            key: record.key,
            value: record.value,
            headers: new Map([
              [Buffer.from(REASON_HEADER), Buffer.from(reason, 'utf8')],
              [Buffer.from(TOPIC_HEADER), Buffer.from(this.topic, 'utf8')],
            ]),
          },
        ],
      })
    } catch (error) {
      if (judge(error) !== 'refused') return retryVerdict(this.name, this.#where, error)
      return {
        kind: 'permanent',
        error: spillwayError(
          'SPW_ERR_SINK_REJECTED',
          `${this.name}: Kafka refused event ${JSON.stringify(key)} on ${this.topic} (${reason}) ` +
            `and on the dead-letter topic ${this.deadLetterTopic} (${describe(error)})`,
        ),
      }
    }
    this.#logger.warn(
      { sink: this.name, event_id: key, topic: this.topic, deadLetterTopic: this.deadLetterTopic, reason },
      'KafkaEventDeadLettered',
    )
    return null
  }

  #send(records: readonly OutgoingRecord[]) {
    return this.#producer!.send({
      messages: records.map((record) => ({
        topic: this.topic,
        key: record.key,
        value: record.value,
        partition: record.partition,
      })),
    })
  }

  /** A metadata request for the topic, after both topics exist; rejects with the reason otherwise. */
  async ping(): Promise<void> {
    const producer = this.#producer
    if (!producer) throw notOpen(this.name)
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        (async () => {
          await this.#ready()
          await producer.metadata({ topics: [this.topic], forceUpdate: true })
        })(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.#connection.timeoutMs} ms`)),
            this.#connection.timeoutMs,
          )
        }),
      ])
    } catch (error) {
      throw unavailable(this.name, this.#where, error)
    } finally {
      clearTimeout(timer)
    }
  }

  /** Every write was awaited by the delivery loop: closing only disconnects. */
  async close(): Promise<void> {
    const producer = this.#producer
    const admin = this.#admin
    this.#producer = null
    this.#admin = null
    this.#topics = null
    await Promise.all([
      closeQuietly(() => producer?.close(true) ?? Promise.resolve()),
      closeQuietly(() => admin?.close() ?? Promise.resolve()),
    ])
  }
}

function notOpen(name: string): Error {
  return spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${name} is not open`)
}
