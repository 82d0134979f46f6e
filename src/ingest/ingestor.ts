/**
 * The path of an accepted event: validate (pure) → serialise → one WAL append → answer. Nothing
 * is acknowledged before the append resolved, and the append resolves after the fdatasync unless
 * the request asked for the fast answer. The bounds on what may wait (admission.ts) are checked
 * before a request gets here; the ingestor only counts the events waiting for a group commit, one
 * of those bounds, and refuses everything once the server is closing.
 *
 * L1 dedup: a bounded cache of the keys this process accepted in the dedup window
 * (src/dedup/cache.ts): `event_id`, scoped by the tenant (the API key's label) when keys are on
 * (`dedupKey`), each with a fingerprint of its event's content. An event whose key is there with
 * the same content, or that repeats a key earlier in the same batch, is answered 202 `duplicate`
 * and not appended; with other content it is a reused id, refused — 409 for a single event, a
 * rejection by index in a batch (not dead-lettered: the event is valid, and replaying it under
 * the same id could only conflict again). A key is added only once its append resolved — never
 * before: a key marked before a 503 would turn the client's retry into a silent loss. Two copies
 * in flight at the same moment both pass L1; the delivery-time check catches the second
 * (src/dedup/delivery-check.ts), as it does a copy L1 no longer holds — without a conflict check
 * there: the 409 is exact within L1's window on one node, and a reused id beyond that is a
 * duplicate, as before tenants.
 *
 * Telemetry: every event the ingestor sees is counted once, as accepted, duplicate or rejected
 * with a reason, and only when its fate is known — accepted after the append resolved, never before.
 */
import type { Config } from '../config/schema.ts'
import { ABSENT, CONFLICT, contentFingerprint, DedupCache, SAME } from '../dedup/cache.ts'
import { dedupWindow } from '../dedup/window.ts'
import { spillwayError } from '../errors.ts'
import { parseBatch, validateBatch } from '../intake/batch.ts'
import { quote } from '../intake/describe.ts'
import { dedupKeyOf } from '../intake/event-id.ts'
import { serializeEvent } from '../intake/serialize.ts'
import type { IntakeContext, IntakeLimits, NormalizedEvent, Rejection } from '../intake/types.ts'
import { validateEvent } from '../intake/validate.ts'
import type { DeadLetterStore } from '../shared/dead-letter.ts'
import type { IntakeRecorder } from '../telemetry/metrics.ts'
import type { WalWriter } from '../wal/writer.ts'

const NEWLINE = 0x0a

/** What `#unseen` keeps of a batch: the payload to append and, per event of it, key and content. */
interface Unseen {
  readonly payload: Buffer
  readonly keys: string[]
  /** Two 32-bit halves per kept event. */
  readonly contents: Int32Array
  readonly conflicts: Rejection[]
  readonly duplicates: number
}

export interface BatchOutcome {
  readonly accepted: number
  readonly duplicates: number
  readonly rejected: readonly { readonly index: number; readonly error: string }[]
  /** `?results=full`: one entry per input event, in input order; absent otherwise. */
  readonly results?: readonly EventResult[]
}

/**
 * One event's fate in a batch (`?results=full`). `event_id` is the id the event is stored under
 * (generated ones included); for a rejected event the client's own, or null when it sent none
 * usable. `reason`: `invalid` (dead-lettered) or `conflict` (its id was used for another event).
 */
export interface EventResult {
  readonly index: number
  readonly status: 'accepted' | 'duplicate' | 'rejected'
  readonly event_id: string | null
  readonly error?: string
  readonly reason?: 'invalid' | 'conflict'
}

/** What `#unseen` marks per valid event when the caller wants every fate. */
const DUPLICATE = 1
const CONFLICTED = 2

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
  /** The content fingerprint of the event on the single-event path. */
  readonly #content = new Int32Array(2)
  #pendingEvents = 0
  #closed = false

  constructor(wal: WalWriter, config: Config, deadLetters?: DeadLetterStore, metrics?: IntakeRecorder) {
    this.#wal = wal
    this.#deadLetters = deadLetters
    this.#metrics = metrics
    this.#maxBatchEvents = config.maxBatchEvents
    this.#l1 = new DedupCache(config.dedupCacheEntries, dedupWindow(config.dedupWindowSeconds).ms, {
      content: true,
    })
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

  /** Whether the server is closing (answers then say `Connection: close`). */
  get closed(): boolean {
    return this.#closed
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
    const event = result.event
    const key = dedupKeyOf(event)
    const payload = Buffer.from(serializeEvent(event) + '\n', 'utf8')
    const content = this.#content
    if (this.#l1.capacity > 0) {
      const clientTimestamp = event.timestamp - (result.skewSeconds ?? 0)
      contentFingerprint(payload, 0, payload.length - 1, clientTimestamp, content, 0)
      const found = this.#l1.lookup(key, content[0], content[1])
      if (found === CONFLICT) throw this.#rejected(conflict(event.event_id), 1)
      if (found !== ABSENT) {
        this.#metrics?.duplicate(1)
        return { event_id: event.event_id, duplicate: true }
      }
    }
    const hi = content[0]
    const lo = content[1]
    try {
      await this.#append(payload, 1, durable)
    } catch (error) {
      throw this.#rejected(error, 1)
    }
    this.#l1.add(key, Date.now(), hi, lo)
    this.#metrics?.accepted(1)
    return { event_id: event.event_id, duplicate: false }
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
    full = false,
  ): Promise<BatchOutcome> {
    let parsed: ReturnType<typeof parseBatch>
    try {
      parsed = parseBatch(body, ndjson, this.#maxBatchEvents, this.#limits.maxDepth)
    } catch (error) {
      // Not readable as events: the request counts as one rejected event.
      this.#metrics?.received(1)
      throw this.#rejected(error, 1)
    }
    const validation = validateBatch(parsed.items, parsed.lineErrors, ctx, this.#limits)
    const { rejected } = validation
    this.#metrics?.received(parsed.items.length)
    this.#metrics?.rejected('invalid', rejected.length)
    // Only `?results=full` pays for a fate per event; the default answer allocates nothing per event.
    const fates = full ? new Uint8Array(validation.events.length) : undefined
    const { payload, keys, contents, conflicts, duplicates } = this.#unseen(validation, fates)
    const count = keys.length
    this.#metrics?.duplicate(duplicates)
    this.#metrics?.rejected('conflict', conflicts.length)
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
      if (count > 0) await this.#append(payload, count, durable)
    } catch (error) {
      throw this.#rejected(error, count)
    }
    const now = Date.now()
    for (let i = 0; i < count; i++) this.#l1.add(keys[i], now, contents[2 * i], contents[2 * i + 1])
    this.#metrics?.accepted(count)
    const all = conflicts.length === 0 ? rejected : byIndex(rejected, conflicts)
    if (fates === undefined) return { accepted: count, duplicates, rejected: all }
    return {
      accepted: count,
      duplicates,
      rejected: all,
      results: resultsOf(parsed.items, validation, fates, rejected, conflicts),
    }
  }

  /**
   * The WAL payload of the events whose key is neither in L1 nor earlier in the same batch, with
   * their keys and content fingerprints; the rest are duplicates (same content) or conflicts.
   */
  #unseen(
    validation: {
      readonly events: readonly NormalizedEvent[]
      readonly indexes: readonly number[]
      readonly clientTimestamps: readonly number[]
    },
    fates?: Uint8Array,
  ): Unseen {
    const { events, indexes, clientTimestamps } = validation
    const l1 = this.#l1
    let text = ''
    for (let i = 0; i < events.length; i++) text += serializeEvent(events[i]) + '\n'
    const all = Buffer.from(text, 'utf8')
    const keys: string[] = new Array(events.length)
    if (l1.capacity === 0) {
      for (let i = 0; i < events.length; i++) keys[i] = dedupKeyOf(events[i])
      return { payload: all, keys, contents: new Int32Array(0), conflicts: [], duplicates: 0 }
    }
    const now = Date.now()
    const contents = new Int32Array(2 * events.length)
    /** Key → its position in `keys`, for repeats inside the batch. */
    const inBatch = new Map<string, number>()
    const conflicts: Rejection[] = []
    /** Byte ranges of the kept lines, once a line was left out; null while every line is kept. */
    let kept: Buffer[] | null = null
    let count = 0
    let duplicates = 0
    let start = 0
    for (let i = 0; i < events.length; i++) {
      const end = all.indexOf(NEWLINE, start)
      const event = events[i]
      const key = dedupKeyOf(event)
      const at = 2 * count
      contentFingerprint(all, start, end, clientTimestamps[i], contents, at)
      const hi = contents[at]
      const lo = contents[at + 1]
      const earlier = inBatch.get(key)
      const found =
        earlier === undefined
          ? l1.lookup(key, hi, lo, now)
          : contents[2 * earlier] === hi && contents[2 * earlier + 1] === lo
            ? SAME
            : CONFLICT
      if (found === ABSENT) {
        inBatch.set(key, count)
        keys[count++] = key
        kept?.push(all.subarray(start, end + 1))
      } else {
        kept ??= count === 0 ? [] : [all.subarray(0, start)]
        if (found === CONFLICT) {
          conflicts.push({ index: indexes[i], error: conflict(event.event_id).message })
          if (fates) fates[i] = CONFLICTED
        } else {
          duplicates++
          if (fates) fates[i] = DUPLICATE
        }
      }
      start = end + 1
    }
    keys.length = count
    const payload = kept === null ? all : Buffer.concat(kept)
    return { payload, keys, contents, conflicts, duplicates }
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

/** The 409 of an event_id its tenant already used, in the dedup window, for another event. */
function conflict(eventId: string): Error {
  return spillwayError(
    'SPW_ERR_INTAKE_CONFLICT',
    `event_id ${quote(eventId)} was already used for a different event`,
  )
}

/** Every input event's fate, in input order (`?results=full`). */
function resultsOf(
  items: readonly unknown[],
  validation: { readonly events: readonly NormalizedEvent[]; readonly indexes: readonly number[] },
  fates: Uint8Array,
  invalid: readonly Rejection[],
  conflicts: readonly Rejection[],
): EventResult[] {
  const results: EventResult[] = new Array(items.length)
  const { events, indexes } = validation
  let c = 0
  for (let i = 0; i < events.length; i++) {
    const index = indexes[i]
    const event_id = events[i].event_id
    if (fates[i] === CONFLICTED) {
      results[index] = {
        index,
        status: 'rejected',
        event_id,
        error: conflicts[c++].error,
        reason: 'conflict',
      }
    } else {
      results[index] = { index, status: fates[i] === DUPLICATE ? 'duplicate' : 'accepted', event_id }
    }
  }
  for (const { index, error } of invalid) {
    results[index] = {
      index,
      status: 'rejected',
      event_id: clientIdOf(items[index]),
      error,
      reason: 'invalid',
    }
  }
  return results
}

/** A rejected event's own `event_id` when it is one the API would take, else null. */
function clientIdOf(item: unknown): string | null {
  const id = typeof item === 'object' && item !== null ? (item as { event_id?: unknown }).event_id : undefined
  return typeof id === 'string' && id.length > 0 && id.length <= 128 ? id : null
}

/** Two lists of rejections, each in index order, merged in index order. */
function byIndex(a: readonly Rejection[], b: readonly Rejection[]): Rejection[] {
  const out: Rejection[] = []
  let i = 0
  let j = 0
  while (i < a.length || j < b.length) {
    if (j === b.length || (i < a.length && a[i].index < b[j].index)) out.push(a[i++])
    else out.push(b[j++])
  }
  return out
}
