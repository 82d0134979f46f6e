/**
 * Options of the `nats` sink out of the server's configuration (`natsAckWindow`; where the stream
 * lives and how to reach it — `natsUrl`, `natsStream`, `natsSubject`, … — is
 * src/connectors/nats/config.ts).
 */

import type { Config } from '../../config/schema.ts'
import { type NatsStreamOptions, natsStreamOptions } from '../../connectors/nats/config.ts'
import type { Logger } from '../../telemetry/logger.ts'

export interface NatsSinkOptions extends NatsStreamOptions {
  /** Sink name: in logs and errors (default `nats`). */
  readonly name?: string
  /** Publishes in flight before the sink waits for their acks. */
  readonly ackWindow?: number
  readonly logger?: Logger
}

export const NATS_DEFAULTS = {
  name: 'nats',
  stream: 'EVENTS',
  subject: 'events',
  consumer: 'spillway',
  duplicateWindowMs: 120_000,
  ackWindow: 1000,
  timeoutMs: 10_000,
} as const

/** The sink's options from the server configuration; a bad value fails naming the option. */
export function natsSinkOptions(config: Config, name: string, logger?: Logger): NatsSinkOptions {
  return {
    ...natsStreamOptions(config, `sink ${name}`),
    name,
    ackWindow: config.natsAckWindow,
    logger,
  }
}
