/**
 * A circuit breaker for one sink. Its job is to stop hammering a sink that is down and to make
 * "this sink is down" a visible state rather than a stream of retry log lines.
 *
 *   closed ──(`failures` consecutive failures)──▶ open ──(open period over)──▶ half-open
 *     ▲                                            ▲                              │
 *     └──────────────── trial answered ────────────┼──────────────────────────────┤
 *                                                  └──────── trial failed ────────┘
 *
 * - closed: writes go through; a failure (a retry verdict, a throw, a timeout) counts, any
 *   answer resets the count. An answer is `delivered` or `permanent`: a sink that refuses data
 *   is a healthy sink judging the data, not a sink that is down.
 * - open: no write is attempted for the open period. It starts at `openMs` and doubles each time
 *   a trial fails, up to `maxOpenMs`, so a long outage costs one request every minute at most.
 * - half-open: one trial write. An answer closes the breaker (and the open period starts small
 *   again); a failure opens it again.
 *
 * The breaker does not sleep and has no timers: the delivery loop asks `waitMs()` before a write
 * and reports each outcome. The clock is injectable, so tests drive it by hand.
 */

export type BreakerState = 'closed' | 'open' | 'half-open'

export interface BreakerOptions {
  /** Consecutive failures that open the breaker (at least 1). */
  readonly failures?: number
  /** First open period. */
  readonly openMs?: number
  /** Longest open period; the period doubles up to this while the sink keeps failing. */
  readonly maxOpenMs?: number
  /** Milliseconds clock; tests pass a fake one. */
  readonly now?: () => number
}

export const BREAKER_DEFAULTS = {
  failures: 5,
  openMs: 5000,
  maxOpenMs: 60_000,
} as const satisfies BreakerOptions

/** What a reported outcome changed, so the caller can log the transition once. */
export type BreakerTransition = 'opened' | 'closed' | null

export class Breaker {
  readonly #threshold: number
  readonly #openMs: number
  readonly #maxOpenMs: number
  readonly #now: () => number

  #state: BreakerState = 'closed'
  #failures = 0
  #opens = 0
  #period: number
  #openUntil = 0

  constructor(options: BreakerOptions = {}) {
    this.#threshold = Math.max(1, options.failures ?? BREAKER_DEFAULTS.failures)
    this.#openMs = Math.max(1, options.openMs ?? BREAKER_DEFAULTS.openMs)
    this.#maxOpenMs = Math.max(this.#openMs, options.maxOpenMs ?? BREAKER_DEFAULTS.maxOpenMs)
    this.#now = options.now ?? Date.now
    this.#period = this.#openMs
  }

  /** The state as of now: an open breaker whose period is over reads as half-open. */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() >= this.#openUntil) this.#state = 'half-open'
    return this.#state
  }

  /** Times the breaker opened since it was built. */
  get opens(): number {
    return this.#opens
  }

  /** Consecutive failures since the last answer. */
  get failures(): number {
    return this.#failures
  }

  /** The current (or, when closed, the next) open period. */
  get periodMs(): number {
    return this.#period
  }

  /** 0 when a write may go now (closed, or the half-open trial); else how long to wait. */
  waitMs(): number {
    return this.state === 'open' ? this.#openUntil - this.#now() : 0
  }

  /** The sink answered (delivered or permanent). */
  success(): BreakerTransition {
    const was = this.state
    this.#failures = 0
    if (was === 'closed') return null
    this.#state = 'closed'
    this.#period = this.#openMs
    return 'closed'
  }

  /** The sink did not answer usefully (retry verdict, throw, timeout). */
  failure(): BreakerTransition {
    const was = this.state
    this.#failures++
    if (was === 'half-open') {
      this.#period = Math.min(this.#maxOpenMs, this.#period * 2)
      return this.#open()
    }
    if (was === 'closed' && this.#failures >= this.#threshold) return this.#open()
    // Open already (a write that was running when it opened): the period stands.
    return null
  }

  #open(): BreakerTransition {
    this.#state = 'open'
    this.#openUntil = this.#now() + this.#period
    this.#opens++
    return 'opened'
  }
}
