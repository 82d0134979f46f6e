/**
 * Options of the `kafka` sink out of the server's configuration (`kafkaTopic`,
 * `kafkaDeadLetterTopic`, `kafkaCompression`, `kafkaPartitions`, `kafkaReplicationFactor`; how to
 * reach the brokers is src/connectors/kafka/config.ts). A bad value fails at start, naming the option.
 */

import type { Config } from '../../config/schema.ts'
import { deadLetterTopic, type KafkaConnection, kafkaConnection } from '../../connectors/kafka/config.ts'
import type { Logger } from '../../telemetry/logger.ts'

export type KafkaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'

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
