/**
 * The path of an accepted event: validate (pure) → serialise → one WAL append → answer. Nothing
 * is acknowledged before the append resolved, and the append resolves after the fdatasync unless
 * the request asked for the fast answer. The bounds on what may wait (admission.ts) are checked
 * before a request gets here; the ingestor only counts the events waiting for a group commit, one
 * of those bounds, and refuses everything once the server is closing.
 *
 * Telemetry: every event the ingestor sees is counted once, as accepted or rejected with a reason,
 * and only when its fate is known — accepted after the append resolved, never before.
 */
import type { Config } from '../config/schema.ts'
import type { DeadLetterStore } from '../delivery/dead-letter.ts'
import { spillwayError } from '../errors.ts'
import { parseBatch, validateBatch } from '../intake/batch.ts'
import { encodeEvents } from '../intake/serialize.ts'
import type { IntakeContext, IntakeLimits } from '../intake/types.ts'
import { validateEvent } from '../intake/validate.ts'
import type { IntakeRecorder } from '../telemetry/metrics.ts'
import type { WalWriter } from '../wal/writer.ts'

export interface BatchOutcome {
  readonly accepted: number
  readonly duplicates: number
  readonly rejected: readonly { readonly index: number; readonly error: string }[]
}

export class Ingestor {
  readonly #wal: WalWriter
  readonly #limits: IntakeLimits
  readonly #maxBatchEvents: number
  readonly #deadLetters: DeadLetterStore | undefined
  readonly #metrics: IntakeRecorder | undefined
  #pendingEvents = 0
  #closed = false

  constructor(wal: WalWriter, config: Config, deadLetters?: DeadLetterStore, metrics?: IntakeRecorder) {
    this.#wal = wal
    this.#deadLetters = deadLetters
    this.#metrics = metrics
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

  /** Refuse before parsing once the server is closing. */
  admit(): void {
    if (this.#closed)
      throw spillwayError(
        'SPW_ERR_SERVER_SHUTTING_DOWN',
        'server is shutting down; retry on another node or later',
      )
  }

  close(): void {
    this.#closed = true
  }

  async acceptEvent(input: unknown, ctx: IntakeContext, durable: boolean): Promise<string> {
    this.#metrics?.received(1)
    const result = validateEvent(input, ctx, this.#limits)
    if (!result.ok) {
      throw this.#rejected(
        spillwayError(result.tooLarge ? 'SPW_ERR_INTAKE_TOO_LARGE' : 'SPW_ERR_INTAKE_INVALID', result.error),
        1,
      )
    }
    try {
      await this.#append(encodeEvents([result.event]), 1, durable)
    } catch (error) {
      throw this.#rejected(error, 1)
    }
    this.#metrics?.accepted(1)
    return result.event.event_id
  }

  async acceptBatch(
    body: Buffer,
    ndjson: boolean,
    ctx: IntakeContext,
    durable: boolean,
  ): Promise<BatchOutcome> {
    let parsed: ReturnType<typeof parseBatch>
    try {
      parsed = parseBatch(body, ndjson, this.#maxBatchEvents)
    } catch (error) {
      // Not readable as events: the request counts as one rejected event.
      this.#metrics?.received(1)
      throw this.#rejected(error, 1)
    }
    const { events, rejected } = validateBatch(parsed.items, parsed.lineErrors, ctx, this.#limits)
    this.#metrics?.received(parsed.items.length)
    this.#metrics?.rejected('invalid', rejected.length)
    try {
      if (rejected.length > 0 && this.#deadLetters) {
        await this.#deadLetters.append(
          rejected.map((r) => ({
            at: ctx.receivedAt,
            reason: r.error,
            index: r.index,
            event: parsed.items[r.index] ?? null,
          })),
        )
        this.#metrics?.deadLettered(rejected.length)
      }
      if (events.length > 0) await this.#append(encodeEvents(events), events.length, durable)
    } catch (error) {
      throw this.#rejected(error, events.length)
    }
    this.#metrics?.accepted(events.length)
    return { accepted: events.length, duplicates: 0, rejected }
  }

  #rejected(error: unknown, count: number): unknown {
    this.#metrics?.rejectedBy(error, count)
    return error
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
