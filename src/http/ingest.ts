/**
 * The path of an accepted event: validate (pure) → serialise → one WAL append → answer. Nothing
 * is acknowledged before the append resolved, and the append resolves after the fdatasync unless
 * the request asked for the fast answer. Admission: while more than `queueSize` events wait for a
 * group commit, new requests are refused with 503 before any work is done on them.
 */
import type { Config } from '../config/schema.ts'
import type { DeadLetterStore } from '../delivery/dead-letter.ts'
import { spillwayError } from '../errors.ts'
import { parseBatch, validateBatch } from '../intake/batch.ts'
import { encodeEvents } from '../intake/serialize.ts'
import type { IntakeContext, IntakeLimits } from '../intake/types.ts'
import { validateEvent } from '../intake/validate.ts'
import type { WalWriter } from '../wal/writer.ts'

export interface BatchOutcome {
  readonly accepted: number
  readonly duplicates: number
  readonly rejected: readonly { readonly index: number; readonly error: string }[]
}

export class Ingestor {
  readonly #wal: WalWriter
  readonly #limits: IntakeLimits
  readonly #queueSize: number
  readonly #maxBatchEvents: number
  readonly #deadLetters: DeadLetterStore | undefined
  #pendingEvents = 0
  #closed = false

  constructor(wal: WalWriter, config: Config, deadLetters?: DeadLetterStore) {
    this.#wal = wal
    this.#deadLetters = deadLetters
    this.#queueSize = config.queueSize
    this.#maxBatchEvents = config.maxBatchEvents
    this.#limits = Object.freeze({
      maxEventBytes: config.maxEventBytes,
      maxStringLength: config.maxStringLength,
      maxTags: config.maxTags,
      maxDepth: config.maxDepth,
      clockSkewSeconds: config.clockSkewSeconds,
    })
  }

  get pendingEvents(): number {
    return this.#pendingEvents
  }

  /** Refuse before parsing when the server is closing or the commit queue is full. */
  admit(): void {
    if (this.#closed)
      throw spillwayError(
        'SPW_ERR_SERVER_SHUTTING_DOWN',
        'server is shutting down; retry on another node or later',
      )
    if (this.#pendingEvents >= this.#queueSize) {
      throw spillwayError(
        'SPW_ERR_ADMISSION_QUEUE_FULL',
        `ingest queue is full (${this.#pendingEvents} events waiting for the log); retry later`,
      )
    }
  }

  close(): void {
    this.#closed = true
  }

  async acceptEvent(input: unknown, ctx: IntakeContext, durable: boolean): Promise<string> {
    const result = validateEvent(input, ctx, this.#limits)
    if (!result.ok) {
      throw spillwayError(
        result.tooLarge ? 'SPW_ERR_INTAKE_TOO_LARGE' : 'SPW_ERR_INTAKE_INVALID',
        result.error,
      )
    }
    await this.#append(encodeEvents([result.event]), 1, durable)
    return result.event.event_id
  }

  async acceptBatch(
    body: Buffer,
    ndjson: boolean,
    ctx: IntakeContext,
    durable: boolean,
  ): Promise<BatchOutcome> {
    const parsed = parseBatch(body, ndjson, this.#maxBatchEvents)
    const { events, rejected } = validateBatch(parsed.items, parsed.lineErrors, ctx, this.#limits)
    if (rejected.length > 0 && this.#deadLetters) {
      await this.#deadLetters.append(
        rejected.map((r) => ({
          at: ctx.receivedAt,
          reason: r.error,
          index: r.index,
          event: parsed.items[r.index] ?? null,
        })),
      )
    }
    if (events.length > 0) await this.#append(encodeEvents(events), events.length, durable)
    return { accepted: events.length, duplicates: 0, rejected }
  }

  async #append(payload: Buffer, count: number, durable: boolean): Promise<void> {
    this.#pendingEvents += count
    try {
      await this.#wal.append(payload, { durable })
    } finally {
      this.#pendingEvents -= count
    }
  }
}
