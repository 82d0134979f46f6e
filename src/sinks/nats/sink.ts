/**
 * The `nats` sink: every event becomes one message on a JetStream stream, published to
 * `natsSubject` with `Nats-Msg-Id` = the dedup key (`event_id`, `<tenant>/<event_id>` with API
 * keys on; percent-encoded when it is not plain printable
 * ASCII: msgIdOf), its payload the event's NDJSON line as the WAL holds it (the normalized event
 * as JSON, without the newline). `spillway consume --from nats`
 * reads them back (src/consume/nats-source.ts).
 *
 * At least once, made idempotent by the stream: delivery keeps its cursor in a file and sends a
 * batch again after a crash, a timeout or a retry; JetStream drops a message whose `Nats-Msg-Id`
 * it stored within the stream's `duplicate_window` (acking it with `duplicate: true`, which
 * counts as delivered). Copies older than the window reach the stream, and the layers behind it
 * drop them (Redis L2 in `consume`, the stores keyed by `event_id`).
 *
 * Publishing: windowed and asynchronous (publisher.ts), at most `natsAckWindow` publishes in
 * flight; the batch is delivered once every publish is acked. What an attempt got acked is
 * remembered until a batch is delivered, so the next attempt (the same batch after a retry, or
 * the halves delivery cuts it into after a permanent refusal) publishes only the rest.
 *
 * Connection and stream (src/connectors/nats/connection.ts): connected and checked in `open()`; a
 * server that does not answer then is logged, not fatal — events are acknowledged into the WAL,
 * the readiness probe says why the sink is not ready, and the next write connects. A stream that
 * cannot take the subject fails the start (and readiness) with a configuration error. After a
 * no-responders answer (the stream was deleted, or JetStream is restarting) the stream is
 * checked, and created if missing, again before the next attempt.
 *
 * Answers → verdicts: verdict.ts (a message the server refuses for its size is permanent;
 * everything else, silence included, retries).
 */
import { pino } from 'pino'
import { where } from '../../connectors/nats/config.ts'
import {
  type Connected,
  checkStream,
  ensureStream,
  LazyNatsConnection,
} from '../../connectors/nats/connection.ts'
import { isSpillwayError, spillwayError } from '../../errors.ts'
import { dedupKeyOf } from '../../intake/event-id.ts'
import { payloadKeys } from '../../intake/ndjson-keys.ts'
import { serializeEvent } from '../../intake/serialize.ts'
import type { Logger } from '../../telemetry/logger.ts'
import { delivered, type Sink, type SinkBatch, type Verdict } from '../sink.ts'
import { NATS_DEFAULTS, type NatsSinkOptions } from './config.ts'
import { JetStreamPublisher, type PublishItem } from './publisher.ts'
import { isNoResponders, verdictFor } from './verdict.ts'

/** Acked event ids remembered across failed attempts at most; beyond, the memory is dropped (JetStream's window still dedups). */
export const MAX_REMEMBERED_ACKS = 200_000

const NEWLINE = 0x0a

interface Kept {
  readonly publisher: JetStreamPublisher
  /** False between a disconnect and the reconnect: writes and pings fail at once meanwhile. */
  readonly link: { up: boolean }
}

export class NatsSink implements Sink {
  readonly name: string
  readonly acceptsNdjson = true
  readonly stream: string
  readonly subject: string
  readonly #options: NatsSinkOptions
  readonly #logger: Logger
  readonly #window: number
  readonly #connection: LazyNatsConnection<Kept>
  #streamReady: Promise<void> | null = null
  /** Ids acked by attempts that were not delivered as a whole (see the header). */
  #acked = new Set<string>()

  constructor(options: NatsSinkOptions) {
    this.name = options.name ?? NATS_DEFAULTS.name
    this.stream = options.stream
    this.subject = options.subject
    this.#options = options
    this.#logger = options.logger ?? pino({ level: 'silent' })
    this.#window = Math.max(1, options.ackWindow ?? NATS_DEFAULTS.ackWindow)
    this.#connection = new LazyNatsConnection({
      options,
      clientName: `spillway-${this.name}`,
      logger: this.#logger.child({ sink: this.name }),
      setup: (nc) => {
        const publisher = new JetStreamPublisher(nc)
        const link = { up: true }
        // A write waiting for acks that cannot come any more fails now instead of at its timeout.
        void (async () => {
          for await (const status of nc.status()) {
            if (status.type === 'disconnect') {
              link.up = false
              publisher.interrupt(`connection to ${this.where} lost`)
            } else if (status.type === 'reconnect') link.up = true
          }
        })().catch(() => {})
        nc.closed().then(() => publisher.interrupt(`connection to ${this.where} closed`))
        return { publisher, link }
      },
      lost: () => {
        this.#streamReady = null
      },
      closedError: () => spillwayError('SPW_ERR_SINK_UNAVAILABLE', `sink ${this.name} is closed`),
    })
  }

  /** The servers, without credentials. */
  get where(): string {
    return where(this.#options)
  }

  /** Connects and checks the stream once: unreachable is logged, a stream that cannot serve fails. */
  async open(): Promise<void> {
    this.#connection.open()
    try {
      await this.#ready()
    } catch (error) {
      if (isSpillwayError(error, 'SPW_ERR_CONFIG_INVALID')) throw error
      this.#logger.warn({ sink: this.name, where: this.where, err: error }, 'NatsUnavailableAtStart')
    }
  }

  async write(batch: SinkBatch): Promise<Verdict> {
    let connected: Connected<Kept>
    try {
      connected = await this.#ready()
      this.#checkLink(connected)
    } catch (error) {
      return { kind: 'retry', error: this.#unavailable(error) }
    }
    const items = itemsOf(batch)
    if (items.length === 0) return delivered
    const acked = this.#acked
    const answers = await connected.publisher.publish(this.subject, items, {
      window: this.#window,
      timeoutMs: this.#options.timeoutMs,
      skip: acked.size === 0 ? undefined : (i) => acked.has(items[i].id),
    })
    const ids = items.map((item) => item.id)
    const verdict = verdictFor(this.name, `stream ${this.stream} at ${this.where}`, { ids, answers })
    if (verdict.kind === 'delivered') {
      if (acked.size > 0) this.#acked = new Set()
      return verdict
    }
    let duplicates = 0
    for (let i = 0; i < answers.length; i++) {
      const answer = answers[i]
      if (answer?.type !== 'ack') continue
      if (answer.duplicate) duplicates++
      if (acked.size < MAX_REMEMBERED_ACKS) acked.add(ids[i])
    }
    if (answers.some(isNoResponders)) this.#streamReady = null
    this.#logger.debug(
      {
        sink: this.name,
        rows: items.length,
        from: batch.from,
        to: batch.to,
        remembered: acked.size,
        duplicates,
        verdict: verdict.kind,
        err: verdict.error,
      },
      'NatsPublishFailed',
    )
    return verdict
  }

  /** Stream info within `natsTimeoutMs`, checked again (a stream edited to drop the subject fails). */
  async ping(): Promise<void> {
    try {
      const connected = await this.#ready()
      this.#checkLink(connected)
      checkStream(await connected.jsm.streams.info(this.stream), this.#options)
    } catch (error) {
      throw this.#unavailable(error)
    }
  }

  async close(): Promise<void> {
    const pending = this.#connection.close()
    this.#streamReady = null
    this.#acked = new Set()
    const connected = await pending
    if (!connected) return
    connected.publisher.close()
    await connected.nc.close().catch(() => {})
  }

  /** The connection, once the stream is there (connecting and creating it on first use). */
  async #ready(): Promise<Connected<Kept>> {
    const connected = await this.#connection.get()
    if (!this.#streamReady) {
      const pending = (async () => {
        const { info, created } = await ensureStream(connected.jsm, this.#options)
        // A new stream holds none of what earlier attempts got acked.
        if (created) this.#acked = new Set()
        this.#logger.info(
          {
            sink: this.name,
            where: this.where,
            stream: this.stream,
            subject: this.subject,
            created,
            duplicateWindowMs: Math.round(info.config.duplicate_window / 1e6),
            messages: info.state.messages,
          },
          'NatsSinkConnected',
        )
      })()
      this.#streamReady = pending
      pending.catch(() => {
        if (this.#streamReady === pending) this.#streamReady = null
      })
    }
    await this.#streamReady
    return connected
  }

  #checkLink(connected: Connected<Kept>): void {
    if (!connected.link.up) {
      throw spillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `${this.name}: not connected to ${this.where} (reconnecting)`,
      )
    }
  }

  #unavailable(error: unknown): Error {
    if (isSpillwayError(error)) return error
    const err = error instanceof Error ? error : new Error(String(error))
    return spillwayError(
      'SPW_ERR_SINK_UNAVAILABLE',
      `${this.name}: no answer from ${this.where} (${err.message})`,
      {
        cause: err,
      },
    )
  }
}

/** One publish per event: the WAL's NDJSON lines as they are, else each event serialised. */
export function itemsOf(batch: SinkBatch): PublishItem[] {
  const { ndjson } = batch
  if (ndjson) {
    const { keys, starts } = payloadKeys(ndjson)
    const items: PublishItem[] = new Array(keys.length)
    for (let i = 0; i < keys.length; i++) {
      let end = ndjson.indexOf(NEWLINE, starts[i])
      if (end === -1) end = ndjson.length
      items[i] = { id: keys[i], msgId: msgIdOf(keys[i]), data: ndjson.subarray(starts[i], end) }
    }
    return items
  }
  return batch.events.map((event) => {
    const key = dedupKeyOf(event)
    return { id: key, msgId: msgIdOf(key), data: Buffer.from(serializeEvent(event)) }
  })
}

/** Printable ASCII but `%`: the ids that go into the header as they are (UUIDs, counters). */
const PLAIN_ID = /^[\x21-\x24\x26-\x7e]+$/

/**
 * The `Nats-Msg-Id` of an event_id: the id itself when it is printable ASCII without `%`, else
 * every other byte of its UTF-8 percent-encoded (`%` too, so the mapping stays one-to-one). A
 * header value cannot hold CR or LF, and NATS trims the whitespace around it — sent as they
 * are, ` a` and `a` would be one id to JetStream, and the second event would be acked as a
 * duplicate without being stored.
 */
export function msgIdOf(eventId: string): string {
  if (PLAIN_ID.test(eventId)) return eventId
  let out = ''
  for (const byte of Buffer.from(eventId, 'utf8')) {
    out +=
      byte >= 0x21 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}
