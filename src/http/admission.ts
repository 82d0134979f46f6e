/**
 * Admission control (docs/ARCHITECTURE.md "Admission"): the door that keeps memory and disk
 * bounded (G4) and latency low under overload (G5).
 *
 * The rule. A POST to an ingest route is admitted only if, when its headers arrive and before a
 * byte of its body is read:
 *   1. `wal_backlog` — the WAL bytes not yet delivered to the slowest sink are under
 *      `maxWalBacklogBytes` (what a slow or dead sink leaves on disk).
 *   2. `queue` — the events waiting for a WAL group commit are under `queueSize`.
 *   3. `delay` — the process is not standing in a queue of its own work: the event loop's delay
 *      (how late a 5 ms timer fires) stayed above `admissionTargetDelayMs` for a whole interval
 *      (CoDel's rule: a good queue empties at least once per interval). While it does, a share of
 *      requests is refused, raised each interval the delay stays high and lowered as it falls
 *      (delay.ts), so a CPU-bound server answers the surplus with a cheap 503 instead of letting
 *      every request wait.
 *   4. `pending_bytes` — the body bytes in memory (admitted, not yet appended), plus this
 *      request's declared length, stay within `maxPendingBytes`.
 * The first bound that fails refuses the request: `503 {"error": …}` with `Retry-After`, no body
 * read, no parsing.
 *
 * Reservations. A request holds the bytes it actually sent, reserved as they arrive
 * (`grow`): a client that declares 16 MB and trickles one byte holds one byte, so slow bodies
 * cannot starve the others. A chunk that would bring the total over `maxPendingBytes` refuses the
 * request there (503, connection closed), unless it is the only one in memory; so does a gzip
 * body whose inflation would. A reservation is released exactly once, when the request's append
 * resolved or failed (or the request ended earlier).
 *
 * Retry-After. The queue, delay and pending bytes drain within a second: 1 s. The backlog drains
 * at the slowest sink's pace, measured here from its cursor: the time to deliver a tenth of the
 * bound at that pace (between 2 and 60 s), 30 s while the sink is not moving.
 *
 * Readiness. `overload()` names a bound that is full now or refused a request in the last second,
 * so /ready turns 503 while clients are being refused and a load balancer can route elsewhere. A
 * bound no longer full is reported with the value that refused and how long ago, not its value now.
 */
import { formatBytes } from '../format.ts'

export type Bound = 'wal_backlog' | 'queue' | 'delay' | 'pending_bytes'

export interface AdmissionLimits {
  readonly maxPendingBytes: number
  readonly maxWalBacklogBytes: number
  readonly queueSize: number
}

/** What admission reads; each call must be cheap (it runs on every request). */
export interface AdmissionSignals {
  /** Events waiting for a WAL group commit. */
  queuedEvents(): number
  /** WAL bytes durable but not delivered to the slowest sink; 0 while unknown. */
  walBacklogBytes(): number
  /** The slowest sink's cursor (its delivered position); -1 while unknown. */
  deliveredPosition(): number
  /** The event loop's queueing delay and the share of requests to refuse for it (delay.ts); none: off. */
  readonly delay?: DelaySignal
}

/** What admission reads of the delay controller (delay.ts). */
export interface DelaySignal {
  /** Whether this request is one of the share refused now (a cheap random draw). */
  refuse(): boolean
  /** The smallest event-loop delay of the last interval, ms. */
  delayMs(): number
  readonly targetMs: number
}

export interface AdmissionRequest {
  /** The Content-Length header, when the request has one (checked, not reserved: see grow). */
  readonly contentLength: number | undefined
}

export interface Refusal {
  readonly bound: Bound
  readonly value: number
  readonly limit: number
  readonly retryAfterSeconds: number
  /** One sentence naming the bound, its value and its limit. */
  readonly message: string
}

export interface BoundState {
  readonly bound: Bound
  readonly limit: number
  readonly current: number
  /** Requests refused by this bound since start. */
  readonly refused: number
}

/** Bytes a request holds against `maxPendingBytes`; released exactly once. */
export class Reservation {
  readonly #admission: Admission
  #bytes: number
  #released = false

  constructor(admission: Admission, bytes: number) {
    this.#admission = admission
    this.#bytes = bytes
  }

  get bytes(): number {
    return this.#released ? 0 : this.#bytes
  }

  get released(): boolean {
    return this.#released
  }

  /**
   * Adds `bytes` that arrived (or that inflation adds); the refusal when they would bring the
   * bytes in memory over `maxPendingBytes` while other requests hold some (nothing is added then).
   */
  grow(bytes: number): Refusal | undefined {
    if (this.#released) return undefined
    const refusal = this.#admission.claim(this.#bytes, bytes)
    if (refusal) return refusal
    this.#bytes += bytes
    return undefined
  }

  /** Sets the reservation to the body's real size once it is known (never refuses). */
  resize(bytes: number): void {
    if (this.#released) return
    this.#admission.adjust(bytes - this.#bytes)
    this.#bytes = bytes
  }

  release(): void {
    if (this.#released) return
    this.#released = true
    this.#admission.adjust(-this.#bytes)
  }
}

const RATE_SAMPLE_MS = 500
const RECENT_REFUSAL_MS = 1000
const STALLED_RETRY_AFTER_S = 30
const MIN_BACKLOG_RETRY_AFTER_S = 2
const MAX_BACKLOG_RETRY_AFTER_S = 60

export class Admission {
  readonly #limits: AdmissionLimits
  readonly #signals: AdmissionSignals
  readonly #now: () => number
  #pendingBytes = 0
  readonly #refused: Record<Bound, number> = { wal_backlog: 0, queue: 0, delay: 0, pending_bytes: 0 }
  readonly #lastRefusedAt: Record<Bound, number> = {
    wal_backlog: Number.NEGATIVE_INFINITY,
    queue: Number.NEGATIVE_INFINITY,
    delay: Number.NEGATIVE_INFINITY,
    pending_bytes: Number.NEGATIVE_INFINITY,
  }
  /** Each bound's value at its last refusal: readiness reports what refused, not the value now. */
  readonly #lastRefusedValue: Record<Bound, number> = { wal_backlog: 0, queue: 0, delay: 0, pending_bytes: 0 }
  /** Delivery pace of the slowest sink, bytes/s (exponentially weighted). */
  #rate = 0
  #sampleAt = Number.NEGATIVE_INFINITY
  #samplePosition = -1

  constructor(limits: AdmissionLimits, signals: AdmissionSignals, options: { now?: () => number } = {}) {
    for (const [name, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new RangeError(`admission limit ${name} must be a positive integer, got ${value}`)
    }
    this.#limits = limits
    this.#signals = signals
    this.#now = options.now ?? Date.now
  }

  /** Body bytes reserved by admitted requests whose append has not resolved yet. */
  get pendingBytes(): number {
    return this.#pendingBytes
  }

  /** A reservation to hold until the request's append resolved, or why the request is refused. */
  admit(request: AdmissionRequest): Reservation | Refusal {
    const now = this.#now()
    this.#sample(now)
    const backlog = this.#signals.walBacklogBytes()
    if (backlog >= this.#limits.maxWalBacklogBytes) {
      return this.#refuse('wal_backlog', backlog, this.#limits.maxWalBacklogBytes, now)
    }
    const queued = this.#signals.queuedEvents()
    if (queued >= this.#limits.queueSize) {
      return this.#refuse('queue', queued, this.#limits.queueSize, now)
    }
    const delay = this.#signals.delay
    if (delay?.refuse()) {
      return this.#refuse('delay', delay.delayMs(), delay.targetMs, now)
    }
    // Declared, not reserved: the bytes are reserved as they arrive (Reservation.grow).
    const declared = request.contentLength ?? 0
    if (this.#pendingBytes > 0 && this.#pendingBytes + declared > this.#limits.maxPendingBytes) {
      return this.#refuse('pending_bytes', this.#pendingBytes + declared, this.#limits.maxPendingBytes, now)
    }
    return new Reservation(this, 0)
  }

  /** Reservation.grow's check: `held` bytes of the request, `more` arriving. */
  claim(held: number, more: number): Refusal | undefined {
    const total = this.#pendingBytes + more
    if (this.#pendingBytes - held > 0 && total > this.#limits.maxPendingBytes) {
      return this.#refuse('pending_bytes', total, this.#limits.maxPendingBytes, this.#now())
    }
    this.#pendingBytes = total
    return undefined
  }

  /** A bound that is full now or refused a request within the last second; null when none. */
  overload(): Refusal | null {
    const now = this.#now()
    for (const state of this.state()) {
      const recent = now - this.#lastRefusedAt[state.bound] < RECENT_REFUSAL_MS
      // The delay is a bound only while it refuses: above its target for a moment is normal.
      const full = state.bound !== 'delay' && state.current >= state.limit
      if (full) return this.#describe(state.bound, state.current, state.limit, now, false)
      if (recent) return this.#describeRecent(state, now)
    }
    return null
  }

  /** Every bound with its limit, current value and refusals (for metrics and readiness). */
  state(): BoundState[] {
    return [
      {
        bound: 'wal_backlog',
        limit: this.#limits.maxWalBacklogBytes,
        current: this.#signals.walBacklogBytes(),
        refused: this.#refused.wal_backlog,
      },
      {
        bound: 'queue',
        limit: this.#limits.queueSize,
        current: this.#signals.queuedEvents(),
        refused: this.#refused.queue,
      },
      ...(this.#signals.delay
        ? [
            {
              bound: 'delay' as const,
              limit: this.#signals.delay.targetMs,
              current: this.#signals.delay.delayMs(),
              refused: this.#refused.delay,
            },
          ]
        : []),
      {
        bound: 'pending_bytes',
        limit: this.#limits.maxPendingBytes,
        current: this.#pendingBytes,
        refused: this.#refused.pending_bytes,
      },
    ]
  }

  /** Reservation bookkeeping; only Reservation calls this. */
  adjust(delta: number): void {
    this.#pendingBytes = Math.max(0, this.#pendingBytes + delta)
  }

  #refuse(bound: Bound, value: number, limit: number, now: number): Refusal {
    this.#refused[bound]++
    this.#lastRefusedAt[bound] = now
    this.#lastRefusedValue[bound] = value
    return this.#describe(bound, value, limit, now)
  }

  /** `refusing`: said to the refused request (its own bytes included); else: the state now. */
  #describe(bound: Bound, value: number, limit: number, now: number, refusing = true): Refusal {
    const retryAfterSeconds = bound === 'wal_backlog' ? this.#backlogRetryAfter(now) : 1
    const what =
      bound === 'wal_backlog'
        ? `the WAL backlog not yet delivered to the slowest sink is ${size(value)}, limit ${size(limit)} (maxWalBacklogBytes)`
        : bound === 'queue'
          ? `${events(value)} for a WAL group commit, limit ${limit} (queueSize)`
          : bound === 'delay'
            ? `work waits ${value.toFixed(0)} ms in this process (event-loop delay), target ${limit} ms (admissionTargetDelayMs)`
            : refusing
              ? `this request would bring request bodies in memory to ${size(value)}, over the limit of ${size(limit)} (maxPendingBytes)`
              : `request bodies in memory are ${size(value)}, limit ${size(limit)} (maxPendingBytes)`
    return {
      bound,
      value,
      limit,
      retryAfterSeconds,
      message: `server is overloaded: ${what}; ${refusing ? `retry after ${retryAfterSeconds} s` : 'new requests are refused'}`,
    }
  }

  /**
   * A bound that refused within the last second but is not full now: the value that refused and
   * when, with the value now beside it ("0 events wait …, limit 1" alone read as a contradiction).
   */
  #describeRecent(state: BoundState, now: number): Refusal {
    const { bound, limit, current } = state
    const value = this.#lastRefusedValue[bound]
    const ago = Math.max(0, Math.round(now - this.#lastRefusedAt[bound]))
    const then =
      bound === 'wal_backlog'
        ? `the WAL backlog not yet delivered to the slowest sink was ${size(value)}, limit ${size(limit)} (maxWalBacklogBytes); ${size(current)} now`
        : bound === 'queue'
          ? `${value} ${value === 1 ? 'event' : 'events'} waited for a WAL group commit, limit ${limit} (queueSize); ${current} wait now`
          : bound === 'delay'
            ? `work waited ${value.toFixed(0)} ms in this process (event-loop delay), target ${limit} ms (admissionTargetDelayMs); ${current.toFixed(0)} ms now`
            : `a request would have brought request bodies in memory to ${size(value)}, over the limit of ${size(limit)} (maxPendingBytes); ${size(current)} now`
    return {
      bound,
      value,
      limit,
      retryAfterSeconds: bound === 'wal_backlog' ? this.#backlogRetryAfter(now) : 1,
      message: `server is overloaded: the ${bound} bound refused a request ${ago} ms ago, when ${then}; new requests may be refused`,
    }
  }

  #backlogRetryAfter(now: number): number {
    this.#sample(now)
    if (this.#rate < 1) return STALLED_RETRY_AFTER_S
    const seconds = Math.ceil(this.#limits.maxWalBacklogBytes / 10 / this.#rate)
    return Math.min(MAX_BACKLOG_RETRY_AFTER_S, Math.max(MIN_BACKLOG_RETRY_AFTER_S, seconds))
  }

  /** Follows the slowest sink's cursor to estimate how fast the backlog drains. */
  #sample(now: number): void {
    if (now - this.#sampleAt < RATE_SAMPLE_MS) return
    const position = this.#signals.deliveredPosition()
    if (this.#samplePosition >= 0 && position >= this.#samplePosition) {
      const rate = ((position - this.#samplePosition) * 1000) / (now - this.#sampleAt)
      // A long gap between samples (an idle server) counts as one sample, not as many.
      this.#rate = this.#rate === 0 ? rate : this.#rate * 0.5 + rate * 0.5
    }
    this.#sampleAt = now
    this.#samplePosition = position
  }
}

export function isRefusal(verdict: Reservation | Refusal): verdict is Refusal {
  return !(verdict instanceof Reservation)
}

function events(n: number): string {
  return n === 1 ? '1 event waits' : `${n} events wait`
}

function size(bytes: number): string {
  return bytes < 10 * 1024 ? formatBytes(bytes) : `${formatBytes(bytes)} (${bytes} bytes)`
}

/** Content-Length as a number, undefined when absent or not a plain non-negative integer. */
export function contentLengthOf(header: string | undefined): number | undefined {
  if (header === undefined || header === '') return undefined
  const n = Number(header)
  return Number.isSafeInteger(n) && n >= 0 && header.charCodeAt(0) >= 48 && header.charCodeAt(0) <= 57
    ? n
    : undefined
}
