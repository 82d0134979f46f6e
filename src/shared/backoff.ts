/**
 * The one retry pacing of Spillway: a wait that doubles (by `multiplier`) from `initialMs` up to
 * `maxMs`, with jitter, so a fleet of retrying clients does not hammer a recovering service in
 * lockstep. Full jitter (AWS "Exponential Backoff and Jitter") is the default: the n-th wait is
 * uniform in [0, min(maxMs, initialMs · multiplier^n)]. A caller that knows better (a 429's
 * `Retry-After`, a broker's throttle time) passes `afterMs`, and that wins over the formula.
 */

export interface BackoffOptions {
  /** The first wait (its ceiling under full jitter). */
  readonly initialMs?: number
  /** No wait is longer than this (except an explicit `afterMs`, capped by `maxAfterMs`). */
  readonly maxMs?: number
  readonly multiplier?: number
  /**
   * 'full' (default): uniform in [0, wait]; 'none': the wait itself; a ratio r in (0, 1): uniform
   * in wait · [1 − r, 1 + r], rounded (a probe that must not come back at once, nor in lockstep).
   */
  readonly jitter?: 'full' | 'none' | number
  /** Longest `afterMs` a caller may ask for; protects against a nonsensical Retry-After. */
  readonly maxAfterMs?: number
  /** Source of randomness in [0, 1); tests pin it. */
  readonly random?: () => number
}

export const BACKOFF_DEFAULTS = {
  initialMs: 100,
  maxMs: 30_000,
  multiplier: 2,
  maxAfterMs: 5 * 60_000,
} as const satisfies BackoffOptions

export class Backoff {
  readonly #initialMs: number
  readonly #maxMs: number
  readonly #multiplier: number
  readonly #jitter: 'full' | 'none' | number
  readonly #maxAfterMs: number
  readonly #random: () => number
  #attempt = 0

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? BACKOFF_DEFAULTS.initialMs
    this.#maxMs = options.maxMs ?? BACKOFF_DEFAULTS.maxMs
    this.#multiplier = options.multiplier ?? BACKOFF_DEFAULTS.multiplier
    this.#jitter = options.jitter ?? 'full'
    this.#maxAfterMs = options.maxAfterMs ?? BACKOFF_DEFAULTS.maxAfterMs
    this.#random = options.random ?? Math.random
  }

  /** Retries since the last success. */
  get attempt(): number {
    return this.#attempt
  }

  /** The wait before the next try; `afterMs` (the caller's own hint) is used as given. */
  next(afterMs?: number): number {
    const attempt = this.#attempt++
    if (afterMs !== undefined && Number.isFinite(afterMs) && afterMs >= 0) {
      return Math.min(Math.ceil(afterMs), this.#maxAfterMs)
    }
    const ceiling = Math.min(this.#maxMs, this.#initialMs * this.#multiplier ** attempt)
    if (this.#jitter === 'full') return Math.floor(this.#random() * ceiling)
    if (this.#jitter === 'none') return ceiling
    return Math.round(ceiling * (1 - this.#jitter + 2 * this.#jitter * this.#random()))
  }

  /** After a success the next failure starts small again. */
  reset(): void {
    this.#attempt = 0
  }
}
