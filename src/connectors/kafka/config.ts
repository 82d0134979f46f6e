/**
 * How to reach the brokers — for the `kafka` sink and `consume --from kafka` alike — out of the
 * server's configuration (`kafkaBrokers`, `kafkaClientId`, `kafkaTimeoutMs`, `kafkaSasl`,
 * `kafkaUsername`, `kafkaPassword`, `kafkaTls`, `kafkaTlsCaFile`, and the dead-letter topic both
 * write to: `kafkaTopic`, `kafkaDeadLetterTopic`). A bad value fails at start, naming the option.
 */
import { readFileSync } from 'node:fs'
import { maskUrl } from '../../config/mask.ts'
import type { Config } from '../../config/schema.ts'
import { spillwayError } from '../../errors.ts'

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
