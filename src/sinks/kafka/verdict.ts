/**
 * A failed produce → what the `kafka` sink does. Kafka names its failures (MESSAGE_TOO_LARGE,
 * NOT_ENOUGH_REPLICAS…) per partition of a produce request, and @platformatic/kafka hands them
 * over as protocol errors carrying that name (`apiId`) inside aggregate errors, with the broker's
 * answer (which partitions were written) on the response error. The decision reads the names,
 * never the messages:
 * - the data is refused (REFUSED_CODES: a record batch larger than the topic's
 *   `max.message.bytes`, a record the broker judges invalid or corrupt) → `refused`: the sink cuts
 *   the refused partition's messages in halves until the refused event stands alone, produces it
 *   to the dead-letter topic with the reason in a header and answers `delivered` (sink.ts);
 *   nothing of a refused partition batch was written, so the halves that pass are not copies.
 *   INVALID_TIMESTAMP is deliberately not in the list: the sink stamps records with its clock, so
 *   it means a clock (or a `message.timestamp.*.max.ms`) to fix, which would refuse every event
 *   alike and turn the whole backlog into dead letters;
 * - authentication and authorization (SASL, topic/cluster ACLs) → `auth`: retried after a pause
 *   with an error that says what to fix — an operator fixes the configuration, the events wait in
 *   the WAL, none is dropped;
 * - everything else → `retry`: leader elections, not enough in-sync replicas, request timeouts,
 *   a broker that is down or restarting, a missing topic (created again before the next attempt),
 *   unknown codes, and no answer at all. An unknown failure must never turn acknowledged events
 *   into dead letters (G2, docs/ARCHITECTURE.md "Guarantees").
 */
import { protocolErrorsCodesById } from '@platformatic/kafka'
import { describe, type ErrorLeaf, leaves } from '../../connectors/kafka/errors.ts'
import { spillwayError } from '../../errors.ts'
import type { Verdict } from '../sink.ts'

/** Kafka error names of refused data: the same records would be refused again. */
export const REFUSED_CODES: ReadonlySet<string> = new Set([
  'CORRUPT_MESSAGE',
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
])

/** Kafka error names of credentials or rights: a configuration to fix. */
export const AUTH_CODES: ReadonlySet<string> = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
  'UNSUPPORTED_SASL_MECHANISM',
  'ILLEGAL_SASL_STATE',
  'SASL_AUTHENTICATION_FAILED',
  'SECURITY_DISABLED',
  'DELEGATION_TOKEN_AUTHORIZATION_FAILED',
])

/** How long a write refused for credentials or rights waits before the next attempt. */
export const AUTH_RETRY_MS = 5000

export type Judgement = 'refused' | 'auth' | 'retry'

/** A verdict other than `delivered`. */
export type Failed = Exclude<Verdict, { readonly kind: 'delivered' }>

/** The decision alone, for the table test: `refused` only when every failure is refused data. */
export function judge(error: unknown): Judgement {
  const found = leaves(error)
  if (found.some(isAuth)) return 'auth'
  if (found.length > 0 && found.every((leaf) => leaf.apiId !== undefined && REFUSED_CODES.has(leaf.apiId))) {
    return 'refused'
  }
  return 'retry'
}

function isAuth(leaf: ErrorLeaf): boolean {
  return leaf.code === 'PLT_KFK_AUTHENTICATION' || (leaf.apiId !== undefined && AUTH_CODES.has(leaf.apiId))
}

/** The outcome of one partition in a failed produce: `error` is Kafka's name, absent when written. */
export interface PartitionResult {
  readonly error?: string
  readonly message?: string | null
}

/**
 * What the broker answered for each partition of `topic` in a failed produce (from the response
 * errors the failure carries). A partition missing from the map got no answer: its fate is unknown.
 */
export function partitionResults(error: unknown, topic: string): Map<number, PartitionResult> {
  const results = new Map<number, PartitionResult>()
  const walk = (value: unknown, depth: number) => {
    if (!(value instanceof Error) || depth > 8) return
    const response = (value as { response?: ProduceResponse }).response
    for (const topicResponse of response?.responses ?? []) {
      if (topicResponse.name !== topic || !Array.isArray(topicResponse.partitionResponses)) continue
      for (const partition of topicResponse.partitionResponses) {
        results.set(
          partition.index,
          partition.errorCode === 0
            ? {}
            : {
                error: protocolErrorsCodesById[partition.errorCode] ?? `error code ${partition.errorCode}`,
                message: partition.errorMessage,
              },
        )
      }
    }
    for (const child of (value as AggregateError).errors ?? []) walk(child, depth + 1)
    if (value.cause) walk(value.cause, depth + 1)
  }
  walk(error, 0)
  return results
}

interface ProduceResponse {
  readonly responses?: readonly {
    readonly name?: string
    readonly partitionResponses?: readonly {
      readonly index: number
      readonly errorCode: number
      readonly errorMessage?: string | null
    }[]
  }[]
}

/**
 * A failure that is not (only) refused data: `retry`, with a pause and an error naming what to fix
 * when it is about credentials or rights. `where` names the brokers.
 */
export function retryVerdict(sink: string, where: string, error: unknown): Failed {
  if (judge(error) === 'auth') {
    return {
      kind: 'retry',
      afterMs: AUTH_RETRY_MS,
      error: spillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `${sink}: Kafka at ${where} refused the credentials or the rights of this client (${describe(error)}); ` +
          'check kafkaSasl, kafkaUsername, kafkaPassword and the ACLs of the topics — events wait in the WAL meanwhile',
        { cause: error },
      ),
    }
  }
  return { kind: 'retry', error: unavailable(sink, where, error) }
}

export function unavailable(sink: string, where: string, error: unknown): Error {
  if ((error as { code?: string }).code?.startsWith('SPW_ERR_')) return error as Error
  return spillwayError('SPW_ERR_SINK_UNAVAILABLE', `${sink}: Kafka at ${where} failed: ${describe(error)}`, {
    cause: error,
  })
}
