/**
 * Retry pacing for one sink: capped exponential backoff with full jitter (AWS "Exponential Backoff
 * and Jitter"): the n-th wait is uniform in [0, min(maxMs, initialMs · multiplier^n)], so a fleet of
 * retrying sinks does not hammer a recovering store in lockstep. A sink that knows better (a 429's
 * `Retry-After`, a broker's throttle time) says so with `afterMs`, and that wins over the formula.
 */

export interface BackoffOptions {
  /** Ceiling of the first wait. */
  readonly initialMs?: number
  /** No wait is longer than this (except an explicit `afterMs`, capped by `maxAfterMs`). */
  readonly maxMs?: number
  readonly multiplier?: number
  /** Longest `afterMs` a sink may ask for; protects against a nonsensical Retry-After. */
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
  readonly #maxAfterMs: number
  readonly #random: () => number
  #attempt = 0

  constructor(options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? BACKOFF_DEFAULTS.initialMs
    this.#maxMs = options.maxMs ?? BACKOFF_DEFAULTS.maxMs
    this.#multiplier = options.multiplier ?? BACKOFF_DEFAULTS.multiplier
    this.#maxAfterMs = options.maxAfterMs ?? BACKOFF_DEFAULTS.maxAfterMs
    this.#random = options.random ?? Math.random
  }

  /** Retries since the last success. */
  get attempt(): number {
    return this.#attempt
  }

  /** The wait before the next try; `afterMs` (the sink's own hint) is used as given. */
  next(afterMs?: number): number {
    const attempt = this.#attempt++
    if (afterMs !== undefined && Number.isFinite(afterMs) && afterMs >= 0) {
      return Math.min(Math.ceil(afterMs), this.#maxAfterMs)
    }
    const ceiling = Math.min(this.#maxMs, this.#initialMs * this.#multiplier ** attempt)
    return Math.floor(this.#random() * ceiling)
  }

  /** After a success the next failure starts small again. */
  reset(): void {
    this.#attempt = 0
  }
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted || ms <= 0) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
