/**
 * The path of an accepted event: validate (pure) → serialise → one WAL append → answer. Nothing
 * is acknowledged before the append resolved, and the append resolves after the fdatasync unless
 * the request asked for the fast answer. The bounds on what may wait (admission.ts) are checked
 * before a request gets here; the ingestor only counts the events waiting for a group commit, one
 * of those bounds, and refuses everything once the server is closing.
 *
 * L1 dedup: a bounded cache of the keys (`event_id`) this process accepted in the dedup window
 * (src/dedup/cache.ts). An event whose key is there, or that repeats a key earlier in the same
 * batch, is answered 202 `duplicate` and not appended. A key is added only once its append
 * resolved — never before: a key marked before a 503 would turn the client's retry into a silent
 * loss. Two copies in flight at the same moment both pass L1; the delivery-time check catches the
 * second (src/dedup/delivery-check.ts).
 *
 * Telemetry: every event the ingestor sees is counted once, as accepted, duplicate or rejected
 * with a reason, and only when its fate is known — accepted after the append resolved, never before.
 */
import type { Config } from '../config/schema.ts'
import { DedupCache } from '../dedup/cache.ts'
import type { DeadLetterStore } from '../delivery/dead-letter.ts'
import { spillwayError } from '../errors.ts'
import { parseBatch, validateBatch } from '../intake/batch.ts'
import { encodeEvents } from '../intake/serialize.ts'
import type { IntakeContext, IntakeLimits, NormalizedEvent } from '../intake/types.ts'
import { validateEvent } from '../intake/validate.ts'
import type { IntakeRecorder } from '../telemetry/metrics.ts'
import type { WalWriter } from '../wal/writer.ts'

export interface BatchOutcome {
  readonly accepted: number
  readonly duplicates: number
  readonly rejected: readonly { readonly index: number; readonly error: string }[]
}

export interface EventOutcome {
  readonly event_id: string
  readonly duplicate: boolean
}

export class Ingestor {
  readonly #wal: WalWriter
  readonly #l1: DedupCache
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
    this.#l1 = new DedupCache(config.dedupCacheEntries, config.dedupWindowSeconds * 1000)
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

  /** Keys L1 holds now (expired ones included until their slot is reused). */
  get l1Size(): number {
    return this.#l1.size
  }

  async acceptEvent(input: unknown, ctx: IntakeContext, durable: boolean): Promise<EventOutcome> {
    this.#metrics?.received(1)
    const result = validateEvent(input, ctx, this.#limits)
    if (!result.ok) {
      throw this.#rejected(
        spillwayError(result.tooLarge ? 'SPW_ERR_INTAKE_TOO_LARGE' : 'SPW_ERR_INTAKE_INVALID', result.error),
        1,
      )
    }
    const key = result.event.event_id
    if (this.#l1.has(key)) {
      this.#metrics?.duplicate(1)
      return { event_id: key, duplicate: true }
    }
    try {
      await this.#append(encodeEvents([result.event]), 1, durable)
    } catch (error) {
      throw this.#rejected(error, 1)
    }
    this.#l1.add(key)
    this.#metrics?.accepted(1)
    return { event_id: key, duplicate: false }
  }

  /**
   * `deadLetter: false` (`?dead_letter=false`): the invalid events are answered by index but not
   * kept — for a client that keeps them itself, like `dlq replay`, whose entries are already in
   * the store. A full dead-letter store refuses the whole request (503) before anything is appended.
   */
  async acceptBatch(
    body: Buffer,
    ndjson: boolean,
    ctx: IntakeContext,
    durable: boolean,
    deadLetter = true,
  ): Promise<BatchOutcome> {
    let parsed: ReturnType<typeof parseBatch>
    try {
      parsed = parseBatch(body, ndjson, this.#maxBatchEvents, this.#limits.maxDepth)
    } catch (error) {
      // Not readable as events: the request counts as one rejected event.
      this.#metrics?.received(1)
      throw this.#rejected(error, 1)
    }
    const { events: valid, rejected } = validateBatch(parsed.items, parsed.lineErrors, ctx, this.#limits)
    this.#metrics?.received(parsed.items.length)
    this.#metrics?.rejected('invalid', rejected.length)
    const events = this.#unseen(valid)
    const duplicates = valid.length - events.length
    this.#metrics?.duplicate(duplicates)
    try {
      if (rejected.length > 0 && this.#deadLetters && deadLetter) {
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
    for (const event of events) this.#l1.add(event.event_id)
    this.#metrics?.accepted(events.length)
    return { accepted: events.length, duplicates, rejected }
  }

  /** The events whose key is neither in L1 nor earlier in the same batch. */
  #unseen(events: NormalizedEvent[]): NormalizedEvent[] {
    if (this.#l1.capacity === 0) return events
    const now = Date.now()
    const seen = new Set<string>()
    let unseen: NormalizedEvent[] | undefined
    for (let i = 0; i < events.length; i++) {
      const key = events[i].event_id
      if (this.#l1.has(key, now) || seen.has(key)) {
        unseen ??= events.slice(0, i)
        continue
      }
      seen.add(key)
      unseen?.push(events[i])
    }
    return unseen ?? events
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
