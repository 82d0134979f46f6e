/**
 * The NATS JetStream log of `spillway consume --from nats`: a durable pull consumer
 * (`natsConsumer`) on the stream the `nats` sink writes (`natsStream`, filtered on `natsSubject`),
 * stream and consumer created when missing.
 *
 * Acks: explicit, one per message, sent in `commit()` only — after the batch is stored. Not
 * `AckAll`: acking sequence N under `AckAll` also acks every message delivered before N that is
 * still pending, including one the server sent but this process never saw (lost in flight on a
 * reconnect, or landing after a pull request was abandoned). Under `AckAll` that message would
 * be acked without ever being stored — silent loss; under explicit acks it comes back after
 * `ack_wait`. The cost is one small fire-and-forget publish per message, and it makes the two
 * other per-message operations possible: `+WPI` (work in progress) for messages held longer than
 * a third of `ack_wait` — a sink outage keeps them uncommitted for minutes, and without it
 * JetStream would redeliver every held message each `ack_wait` (and `consume` would append the
 * copies to its WAL again) — and `-NAK` on `close()`, which hands the held messages to the next
 * reader at once instead of after `ack_wait`. A crash gets neither: its messages come back after
 * `ack_wait` (ACK_WAIT_MS).
 *
 * Fetching: one inbox subscription for the source's life, and at most one pull request
 * (`$JS.API.CONSUMER.MSG.NEXT`) out at a time, always with `expires` so the server ends it.
 * Messages of a request that arrive after `fetch()` returned wait in the buffer for the next one
 * (nothing is dropped in flight); a fetch returns as soon as it has `max` messages, or has some
 * and the last one says nothing more is pending, or `waitMs` is over. Memory is bounded: the
 * buffer holds at most one request's `max`; the held (fetched, uncommitted) messages keep only
 * their ack subjects, at most the consumer's `max_ack_pending` (MAX_ACK_PENDING_BATCHES batches).
 *
 * Dead letters: no `deadLetter()`. Under limits retention an acked message stays in the stream at
 * its sequence, so the log still holds the refused original; the local dead-letter store records
 * it with the reason (and `describe` names the sequences). A `<subject>.dead-letter` publish would
 * reach no stream unless an operator made one capture it — a message nobody stores.
 *
 * Several `consume` nodes may share the durable consumer: JetStream hands each pull request
 * different messages (the scale-out model of pull consumers).
 */
import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiCodes,
  type JetStreamManager,
  ReplayPolicy,
} from '@nats-io/jetstream'
import { createInbox, type Msg, nanos, type Subscription } from '@nats-io/transport-node'
import type { Config } from '../config/schema.ts'
import { checkName, type NatsStreamOptions, natsStreamOptions, where } from '../connectors/nats/config.ts'
import {
  apiErrorCode,
  type Connected,
  ensureStream,
  LazyNatsConnection,
} from '../connectors/nats/connection.ts'
import { spillwayError } from '../errors.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { FetchedBatch, LogSource } from './source.ts'

/** Time JetStream gives a delivered message before it hands it out again (crash recovery). */
export const ACK_WAIT_MS = 60_000
/** `max_ack_pending` of a consumer Spillway creates, in fetch batches (bounded below and above). */
export const MAX_ACK_PENDING_BATCHES = 8
export const MIN_ACK_PENDING = 10_000
export const MAX_ACK_PENDING = 200_000
/** A pull request's shortest `expires`. */
const MIN_EXPIRES_MS = 50
/** How long past its `expires` a request without an end (a server restart) still counts as out. */
const REQUEST_GRACE_MS = 2000

const ACK = Buffer.from('+ACK')
const NAK = Buffer.from('-NAK')
const WORKING = Buffer.from('+WPI')

export interface NatsSourceOptions extends NatsStreamOptions {
  /** The durable pull consumer. */
  readonly consumer: string
  /** `max_ack_pending` when the consumer is created. */
  readonly maxAckPending: number
  readonly ackWaitMs?: number
  readonly logger: Logger
}

export function createNatsSource(config: Config, logger: Logger): LogSource {
  return new NatsSource(natsSourceOptions(config, logger))
}

export function natsSourceOptions(config: Config, logger: Logger): NatsSourceOptions {
  return {
    ...natsStreamOptions(config, '`consume --from nats`'),
    consumer: checkName('natsConsumer', config.natsConsumer),
    maxAckPending: Math.min(
      MAX_ACK_PENDING,
      Math.max(MIN_ACK_PENDING, MAX_ACK_PENDING_BATCHES * config.consumeBatchMessages),
    ),
    logger,
  }
}

interface Delivered {
  readonly value: Buffer
  /** The ack subject (`$JS.ACK.…`). */
  readonly reply: string
  readonly seq: number
  /** When it arrived or was last kept alive (performance.now()). */
  touchedAt: number
}

interface Held {
  readonly batch: FetchedBatch
  readonly replies: readonly string[]
  touchedAt: number
}

interface Kept {
  readonly inbox: string
  readonly subscription: Subscription
}

export class NatsSource implements LogSource {
  readonly name = 'nats'
  readonly #options: NatsSourceOptions
  readonly #logger: Logger
  readonly #ackWaitMs: number
  readonly #connection: LazyNatsConnection<Kept>
  #consumerReady: Promise<ConsumerInfo> | null = null
  /** Delivered by the server, not handed out yet. */
  #buffer: Delivered[] = []
  /** Handed out by fetch, not committed yet, in fetch order. */
  #held: Held[] = []
  /** The pull request out, if any. */
  #request: { remaining: number; deadline: number } | null = null
  /** `pending` of the last message: how many more the consumer had for us then. */
  #lastPending = -1
  #wake: (() => void) | null = null
  #keepAlive: NodeJS.Timeout | undefined

  constructor(options: NatsSourceOptions) {
    this.#options = options
    this.#logger = options.logger
    this.#ackWaitMs = options.ackWaitMs ?? ACK_WAIT_MS
    this.#connection = new LazyNatsConnection({
      options,
      clientName: 'spillway-consume',
      logger: this.#logger,
      setup: (nc) => {
        const inbox = createInbox()
        const subscription = nc.subscribe(inbox, {
          callback: (error, msg) => {
            if (!error) this.#onMessage(msg)
          },
        })
        void (async () => {
          // A pull request does not survive the connection: the next fetch sends a new one.
          for await (const status of nc.status()) {
            if (status.type === 'disconnect' || status.type === 'reconnect') {
              this.#request = null
              this.#wakeUp()
            }
          }
        })().catch(() => {})
        return { inbox, subscription }
      },
      lost: () => {
        this.#consumerReady = null
      },
      closedError: () => spillwayError('SPW_ERR_SINK_UNAVAILABLE', 'the NATS source is closed'),
    })
  }

  get where(): string {
    return where(this.#options)
  }

  async open(): Promise<void> {
    this.#connection.open()
    await this.#ready()
    const info = await this.#consumerReady!
    this.#logger.info(
      {
        where: this.where,
        stream: this.#options.stream,
        consumer: info.name,
        pending: info.num_pending,
        ackPending: info.num_ack_pending,
        maxAckPending: info.config.max_ack_pending,
      },
      'NatsConsumerBound',
    )
    clearInterval(this.#keepAlive)
    this.#keepAlive = setInterval(() => this.#touchHeld(), Math.max(100, this.#ackWaitMs / 3))
    this.#keepAlive.unref()
  }

  async fetch(max: number, waitMs: number, signal: AbortSignal): Promise<FetchedBatch | null> {
    if (signal.aborted) return null
    const deadline = performance.now() + waitMs
    let connected = await this.#ready()
    const onAbort = () => this.#wakeUp()
    signal.addEventListener('abort', onAbort, { once: true })
    let timer: NodeJS.Timeout | undefined
    try {
      while (!signal.aborted && this.#buffer.length < max) {
        if (this.#buffer.length > 0 && this.#lastPending === 0) break
        const now = performance.now()
        if (now >= deadline) break
        if (this.#request && now > this.#request.deadline) this.#request = null
        if (!this.#request) {
          // After a no-responders answer the consumer is checked (and created) again first.
          if (!this.#consumerReady) connected = await this.#ready()
          this.#pull(connected, max - this.#buffer.length, Math.max(MIN_EXPIRES_MS, deadline - now))
        }
        await new Promise<void>((resolve) => {
          this.#wake = resolve
          timer = setTimeout(resolve, Math.max(1, deadline - performance.now()))
        })
        clearTimeout(timer)
      }
    } finally {
      clearTimeout(timer)
      this.#wake = null
      signal.removeEventListener('abort', onAbort)
    }
    if (signal.aborted || this.#buffer.length === 0) return null
    const taken = this.#buffer.splice(0, max)
    const batch: FetchedBatch = {
      values: taken.map((m) => m.value),
      describe: `${this.#options.stream}[${this.#options.consumer}]@${taken[0].seq}..${taken.at(-1)!.seq}`,
    }
    this.#held.push({ batch, replies: taken.map((m) => m.reply), touchedAt: performance.now() })
    return batch
  }

  /** Acks every message of `batch` and of the batches fetched before it; logs a failure. */
  async commit(batch: FetchedBatch): Promise<void> {
    const index = this.#held.findIndex((h) => h.batch === batch)
    if (index === -1) throw new Error(`NatsSource.commit: ${batch.describe} was not fetched or is committed`)
    const done = this.#held.splice(0, index + 1)
    const connected = await this.#connection.current()?.catch(() => null)
    if (!connected) {
      this.#logger.warn({ batch: batch.describe }, 'NatsAckFailed')
      return
    }
    try {
      for (const held of done) for (const reply of held.replies) connected.nc.publish(reply, ACK)
      await withTimeout(connected.nc.flush(), this.#options.timeoutMs)
    } catch (error) {
      // Not fatal: unacked messages come back after ack_wait, and the dedup layers drop them.
      this.#logger.warn({ batch: batch.describe, err: error }, 'NatsAckFailed')
    }
  }

  /** Consumer info within `natsTimeoutMs`. */
  async ping(): Promise<void> {
    const { jsm } = await this.#ready()
    await jsm.consumers.info(this.#options.stream, this.#options.consumer)
  }

  /** Gives back (NAKs) every message not committed, so the next reader gets them at once. */
  async close(): Promise<void> {
    clearInterval(this.#keepAlive)
    this.#wakeUp()
    const pending = this.#connection.close()
    this.#consumerReady = null
    const connected = await pending
    const replies = [...this.#held.flatMap((h) => h.replies), ...this.#buffer.map((m) => m.reply)]
    this.#held = []
    this.#buffer = []
    this.#request = null
    if (!connected) return
    try {
      for (const reply of replies) connected.nc.publish(reply, NAK)
      await withTimeout(connected.nc.flush(), this.#options.timeoutMs)
    } catch (error) {
      this.#logger.warn({ messages: replies.length, err: error }, 'NatsNakFailed')
    }
    connected.subscription.unsubscribe()
    await connected.nc.close().catch(() => {})
  }

  /** Sends one pull request; its messages and its end arrive in #onMessage. */
  #pull(connected: Connected<Kept>, batch: number, expiresMs: number): void {
    const { stream, consumer } = this.#options
    this.#request = { remaining: batch, deadline: performance.now() + expiresMs + REQUEST_GRACE_MS }
    this.#lastPending = -1
    try {
      connected.nc.publish(
        `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
        JSON.stringify({ batch, expires: nanos(expiresMs) }),
        { reply: connected.inbox },
      )
    } catch (error) {
      this.#request = null
      throw error
    }
  }

  #onMessage(msg: Msg): void {
    const code = msg.headers?.code ?? 0
    if (code !== 0 && !msg.reply) {
      if (code === 100) return // heartbeat / flow control: not requested, ignored
      // 404 no messages, 408 request expired, 409 (max waiting, consumer deleted, leader change…),
      // 503 no responders (no such consumer, JetStream down): the request is over.
      this.#request = null
      if (code === 503 || (code === 409 && /deleted/i.test(msg.headers?.description ?? ''))) {
        this.#consumerReady = null
      }
      if (code !== 404 && code !== 408) {
        this.#logger.debug({ code, description: msg.headers?.description }, 'NatsPullEnded')
      }
      this.#wakeUp()
      return
    }
    if (!msg.reply) return
    const info = ackInfo(msg.reply)
    this.#buffer.push({
      value: Buffer.from(msg.data),
      reply: msg.reply,
      seq: info.seq,
      touchedAt: performance.now(),
    })
    this.#lastPending = info.pending
    if (this.#request && --this.#request.remaining <= 0) this.#request = null
    this.#wakeUp()
  }

  #wakeUp(): void {
    const wake = this.#wake
    this.#wake = null
    wake?.()
  }

  /**
   * `+WPI` for held messages, and for buffered ones (a consumer paused by backpressure does not
   * fetch), not touched for a third of ack_wait (see the header).
   */
  #touchHeld(): void {
    const now = performance.now()
    const due = (m: { touchedAt: number }) => now - m.touchedAt >= this.#ackWaitMs / 3
    const held = this.#held.filter(due)
    const buffered = this.#buffer.filter(due)
    if (held.length === 0 && buffered.length === 0) return
    void this.#connection
      .current()
      ?.then(({ nc }) => {
        for (const h of held) {
          for (const reply of h.replies) nc.publish(reply, WORKING)
          h.touchedAt = now
        }
        for (const m of buffered) {
          nc.publish(m.reply, WORKING)
          m.touchedAt = now
        }
      })
      .catch((error) => this.#logger.warn({ err: error }, 'NatsKeepAliveFailed'))
  }

  /** The connection, once stream and consumer are there. */
  async #ready(): Promise<Connected<Kept>> {
    const connected = await this.#connection.get()
    if (!this.#consumerReady) {
      const pending = this.#ensureConsumer(connected.jsm)
      this.#consumerReady = pending
      pending.catch(() => {
        if (this.#consumerReady === pending) this.#consumerReady = null
      })
    }
    await this.#consumerReady
    return connected
  }

  async #ensureConsumer(jsm: JetStreamManager): Promise<ConsumerInfo> {
    const { stream, consumer, subject } = this.#options
    await ensureStream(jsm, this.#options)
    let info: ConsumerInfo
    try {
      info = await jsm.consumers.info(stream, consumer)
    } catch (error) {
      if (apiErrorCode(error) !== JetStreamApiCodes.ConsumerNotFound) throw error
      const config: Partial<ConsumerConfig> = {
        durable_name: consumer,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        replay_policy: ReplayPolicy.Instant,
        ack_wait: nanos(this.#ackWaitMs),
        max_ack_pending: this.#options.maxAckPending,
        filter_subject: subject,
      }
      info = await jsm.consumers.add(stream, config)
      this.#logger.info({ stream, consumer, ...config }, 'NatsConsumerCreated')
    }
    const problem = info.config.deliver_subject
      ? 'is a push consumer (it has a deliver_subject)'
      : info.config.ack_policy !== AckPolicy.Explicit
        ? `acks with policy "${info.config.ack_policy}", not "explicit"`
        : null
    if (problem) {
      throw spillwayError(
        'SPW_ERR_CONFIG_INVALID',
        `JetStream consumer ${consumer} on stream ${stream} ${problem}; \`consume\` needs a durable pull consumer with explicit acks: set natsConsumer (SPILLWAY_NATS_CONSUMER) to another name, and Spillway creates it`,
      )
    }
    const filters =
      info.config.filter_subjects ?? (info.config.filter_subject ? [info.config.filter_subject] : [])
    if (filters.length > 0 && !filters.includes(subject)) {
      this.#logger.warn({ stream, consumer, filters, subject }, 'NatsConsumerFilterDiffers')
    }
    return info
  }
}

/** Stream sequence and pending count from an ack subject (both the 9-token and the 12-token forms). */
export function ackInfo(reply: string): { seq: number; pending: number } {
  const tokens = reply.split('.')
  // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>
  // $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>.<token>
  const base = tokens.length === 9 ? 0 : 2
  return { seq: Number(tokens[5 + base]), pending: Number(tokens[8 + base]) }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
