/**
 * The NATS connection and the JetStream stream, shared by the `nats` sink and the NATS source of
 * `spillway consume`.
 *
 * Connection. One per sink or source (`LazyNatsConnection`: made on first use, made again on the
 * next use after it closed or failed), reconnecting forever (a restarted server or a leader
 * election is an outage like any other: the WAL keeps the events meanwhile); the first connect
 * is not retried here — the caller tries again on its next write or fetch, so a server that is
 * down when Spillway starts is not fatal. Async stack traces are off: the client would otherwise
 * build an Error for every request, a large share of the cost of a publish.
 *
 * Stream. Created when missing (file storage, limits retention, `subjects: [subject]`,
 * `duplicate_window` from the options); a stream that exists is left as it is, but it must take
 * the sink's publishes: it must capture the subject and be neither a mirror nor sealed, else the
 * start fails with SPW_ERR_CONFIG_INVALID naming the stream, its subjects and the option to fix.
 * A stream Spillway creates has no age or size limit: retention is the operator's decision (as a
 * Kafka topic's), made with `nats stream edit`.
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream'
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node'
import { spillwayError } from '../../errors.ts'
import type { Logger } from '../../telemetry/logger.ts'
import { type NatsStreamOptions, where } from './config.ts'

/** JetStream's `err_code` for "stream name already in use" and "subjects overlap". */
export const STREAM_NAME_IN_USE = 10058
export const SUBJECTS_OVERLAP = 10065

/** Connects once (no retry of the first attempt); reconnects forever afterwards, logging both ways. */
export async function connectNats(
  options: NatsStreamOptions,
  clientName: string,
  logger: Logger,
): Promise<NatsConnection> {
  const nc = await connect({
    servers: [...options.servers],
    name: clientName,
    user: options.user,
    pass: options.pass,
    token: options.token,
    timeout: options.timeoutMs,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 250,
    pingInterval: 10_000,
    maxPingOut: 3,
    noAsyncTraces: true,
  })
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') logger.warn({ where: where(options) }, 'NatsDisconnected')
      else if (status.type === 'reconnect') logger.info({ where: where(options) }, 'NatsReconnected')
      else if (status.type === 'error') logger.warn({ where: where(options), err: status.error }, 'NatsError')
    }
  })().catch(() => {})
  return nc
}

export async function streamManager(
  nc: NatsConnection,
  options: NatsStreamOptions,
): Promise<JetStreamManager> {
  return jetstreamManager(nc, { timeout: options.timeoutMs, checkAPI: false })
}

/**
 * The stream's info, after creating it if it was missing; `created` says which. Rejects with
 * SPW_ERR_CONFIG_INVALID when the stream cannot take publishes to the subject (see the header).
 */
export async function ensureStream(
  jsm: JetStreamManager,
  options: NatsStreamOptions,
): Promise<{ info: StreamInfo; created: boolean }> {
  let info = await streamInfo(jsm, options.stream)
  let created = false
  if (!info) {
    const config: Partial<StreamConfig> & { name: string } = {
      name: options.stream,
      subjects: [options.subject],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      duplicate_window: nanos(options.duplicateWindowMs),
    }
    try {
      info = await jsm.streams.add(config)
      created = true
    } catch (error) {
      if (apiErrorCode(error) === SUBJECTS_OVERLAP) {
        throw spillwayError(
          'SPW_ERR_CONFIG_INVALID',
          `cannot create JetStream stream ${options.stream}: another stream already captures subject ${options.subject}; set natsStream to that stream or natsSubject to another subject`,
          { cause: error },
        )
      }
      // Another node created it between our info and add.
      if (apiErrorCode(error) !== STREAM_NAME_IN_USE) throw error
      info = await streamInfo(jsm, options.stream)
      if (!info) throw error
    }
  }
  checkStream(info, options)
  return { info, created }
}

/** The stream's info, or null when there is no such stream. */
export async function streamInfo(jsm: JetStreamManager, stream: string): Promise<StreamInfo | null> {
  try {
    return await jsm.streams.info(stream)
  } catch (error) {
    if (apiErrorCode(error) === JetStreamApiCodes.StreamNotFound) return null
    throw error
  }
}

/** Throws SPW_ERR_CONFIG_INVALID unless publishes to the subject land in this stream. */
export function checkStream(info: StreamInfo, options: Pick<NatsStreamOptions, 'stream' | 'subject'>): void {
  const { config } = info
  const subjects = config.subjects?.length ? config.subjects : config.mirror ? [] : [config.name]
  const problem = config.mirror
    ? `is a mirror of ${config.mirror.name} and takes no publishes`
    : config.sealed
      ? 'is sealed and takes no publishes'
      : subjects.some((filter) => subjectMatches(filter, options.subject))
        ? null
        : `does not capture subject ${options.subject} (its subjects: ${subjects.join(', ') || 'none'})`
  if (problem) {
    throw spillwayError(
      'SPW_ERR_CONFIG_INVALID',
      `JetStream stream ${options.stream} ${problem}; set natsSubject (SPILLWAY_NATS_SUBJECT) to a subject it captures or natsStream (SPILLWAY_NATS_STREAM) to another stream`,
    )
  }
}

/** NATS subject matching: `*` is one token, `>` one or more trailing tokens. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.')
  const s = subject.split('.')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i
    if (i >= s.length) return false
    if (f[i] !== '*' && f[i] !== s[i]) return false
  }
  return f.length === s.length
}

/** JetStream's `err_code` of an API error, else undefined. */
export function apiErrorCode(error: unknown): number | undefined {
  return error instanceof JetStreamApiError ? error.code : undefined
}

/** What the memo hands out: the connection, its JetStream manager, and what its user keeps beside them. */
export type Connected<T> = T & { readonly nc: NatsConnection; readonly jsm: JetStreamManager }

export interface LazyNatsConnectionOptions<T> {
  readonly options: NatsStreamOptions
  /** The client's name as the server shows it. */
  readonly clientName: string
  readonly logger: Logger
  /** What the user keeps beside a new connection (a publisher, a subscription), made before the manager. */
  readonly setup: (nc: NatsConnection) => T
  /** A connection the memo handed out closed: whatever was checked on it must be checked again. */
  readonly lost?: () => void
  /** The rejection of `get` after `close`. */
  readonly closedError: () => Error
}

/**
 * One connection, made on first use and shared until it closes or its making fails; the next `get`
 * then connects again. A closed memo refuses `get` until `open`.
 */
export class LazyNatsConnection<T extends object> {
  readonly #options: LazyNatsConnectionOptions<T>
  #pending: Promise<Connected<T>> | null = null
  #closed = false

  constructor(options: LazyNatsConnectionOptions<T>) {
    this.#options = options
  }

  /** The connection, connecting when there is none. */
  get(): Promise<Connected<T>> {
    if (this.#closed) return Promise.reject(this.#options.closedError())
    if (!this.#pending) {
      const { options, clientName, logger, setup, lost } = this.#options
      const pending = (async () => {
        const nc = await connectNats(options, clientName, logger)
        const kept = setup(nc)
        nc.closed().then(() => {
          if (this.#pending === pending) {
            this.#pending = null
            lost?.()
          }
        })
        return { ...kept, nc, jsm: await streamManager(nc, options) }
      })()
      this.#pending = pending
      pending.catch(() => {
        if (this.#pending === pending) this.#pending = null
      })
    }
    return this.#pending
  }

  /** The connection made or being made, without making one; null when there is none. */
  current(): Promise<Connected<T>> | null {
    return this.#pending
  }

  open(): void {
    this.#closed = false
  }

  /** Refuses `get` from now on and forgets the connection; answers it (null: none) for the caller to close. */
  close(): Promise<Connected<T> | null> {
    this.#closed = true
    const pending = this.#pending
    this.#pending = null
    return pending ? pending.catch(() => null) : Promise.resolve(null)
  }
}
