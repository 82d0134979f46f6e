/**
 * Options of the `kafka` sink, and how to reach the brokers — shared with `consume --from kafka`
 * (src/consume/kafka-source.ts) — out of the server's configuration (`kafkaBrokers`,
 * `kafkaTopic`, `kafkaDeadLetterTopic`, `kafkaClientId`, `kafkaCompression`, `kafkaPartitions`,
 * `kafkaReplicationFactor`, `kafkaTimeoutMs`, `kafkaSasl`, `kafkaUsername`, `kafkaPassword`,
 * `kafkaTls`, `kafkaTlsCaFile`). A bad value fails at start, naming the option.
 */
import { readFileSync } from 'node:fs'
import { maskUrl } from '../../config/mask.ts'
import type { Config } from '../../config/schema.ts'
import { spillwayError } from '../../errors.ts'
import type { Logger } from '../../telemetry/logger.ts'

export type KafkaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'
export type KafkaSaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'

/** How to reach the brokers. */
export interface KafkaConnection {
  /** Bootstrap servers, `host:port` each. */
  readonly brokers: readonly string[]
  readonly clientId: string
  /** Bound of one request (connect, produce, metadata, commit), and the broker's produce timeout. */
  readonly timeoutMs: number
  readonly sasl?: {
    readonly mechanism: KafkaSaslMechanism
    readonly username: string
    readonly password: string
  }
  /** TLS; `ca` is PEM text (absent: the system CAs). */
  readonly tls?: { readonly ca?: string }
}

export interface KafkaSinkOptions {
  /** Sink name: in logs and errors (default `kafka`). */
  readonly name?: string
  readonly connection: KafkaConnection
  readonly topic: string
  /** Where events Kafka refuses go, with the reason in a header; default `<topic>.dead-letter`. */
  readonly deadLetterTopic?: string
  readonly compression?: KafkaCompression
  /** Partitions and replication factor of the topics when the sink creates them. */
  readonly partitions?: number
  readonly replicationFactor?: number
  readonly logger?: Logger
}

export const KAFKA_SINK_DEFAULTS = {
  name: 'kafka',
  compression: 'lz4',
  partitions: 6,
  replicationFactor: 1,
} as const satisfies Partial<KafkaSinkOptions>

const SASL_MECHANISMS: Readonly<Record<string, KafkaSaslMechanism>> = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
}

/** `<topic>.dead-letter` unless `kafkaDeadLetterTopic` names one. */
export function deadLetterTopic(config: Pick<Config, 'kafkaTopic' | 'kafkaDeadLetterTopic'>): string {
  return config.kafkaDeadLetterTopic || `${config.kafkaTopic}.dead-letter`
}

/** The brokers and credentials from the configuration; `who` names the user in errors. */
export function kafkaConnection(config: Config, who: string): KafkaConnection {
  if (!config.kafkaBrokers.trim()) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `${who} needs brokers: set kafkaBrokers (KAFKA_BROKERS, --kafka-brokers), e.g. 127.0.0.1:9092`,
    )
  }
  const brokers = config.kafkaBrokers
    .split(',')
    .map((broker) => broker.trim())
    .filter(Boolean)
  for (const broker of brokers) {
    const match = /^(\[[^\]]+\]|[^:/\s]+):(\d{1,5})$/.exec(broker)
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `option kafkaBrokers: expected host:port, got ${JSON.stringify(maskUrl(broker))}`,
      )
    }
  }
  let sasl: KafkaConnection['sasl']
  if (config.kafkaSasl !== 'none') {
    if (!config.kafkaUsername) {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `option kafkaSasl is ${config.kafkaSasl}: set kafkaUsername and kafkaPassword too`,
      )
    }
    sasl = {
      mechanism: SASL_MECHANISMS[config.kafkaSasl],
      username: config.kafkaUsername,
      password: config.kafkaPassword,
    }
  }
  let tls: KafkaConnection['tls']
  if (config.kafkaTls || config.kafkaTlsCaFile) {
    let ca: string | undefined
    if (config.kafkaTlsCaFile) {
      try {
        ca = readFileSync(config.kafkaTlsCaFile, 'utf8')
      } catch (error) {
        throw spillwayError(
          'SPW_ERR_CONFIG_INVALID',
          `option kafkaTlsCaFile: cannot read ${config.kafkaTlsCaFile}: ${(error as Error).message}`,
        )
      }
    }
    tls = ca === undefined ? {} : { ca }
  }
  return { brokers, clientId: config.kafkaClientId, timeoutMs: config.kafkaTimeoutMs, sasl, tls }
}

/** The sink's options from the server configuration. */
export function kafkaSinkOptions(config: Config, name: string, logger?: Logger): KafkaSinkOptions {
  return {
    name,
    connection: kafkaConnection(config, `sink ${name}`),
    topic: config.kafkaTopic,
    deadLetterTopic: deadLetterTopic(config),
    compression: config.kafkaCompression,
    partitions: config.kafkaPartitions,
    replicationFactor: config.kafkaReplicationFactor,
    logger,
  }
}
