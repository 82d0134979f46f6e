/**
 * A fixed-bucket histogram whose snapshot crosses a thread boundary as plain data and maps onto
 * a Prometheus histogram (cumulative bucket counts, sum, count) on the HTTP thread.
 */
export interface HistogramSnapshot {
  /** Upper bounds (`le`), ascending; +Inf is implied by `count`. */
  readonly buckets: readonly number[]
  /** Cumulative: counts[i] observations were ≤ buckets[i]. */
  readonly counts: readonly number[]
  readonly sum: number
  readonly count: number
}

export const BATCH_ROWS_BUCKETS = [1, 10, 100, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000]
export const BATCH_LATENCY_MS_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000]

export class Histogram {
  readonly #buckets: readonly number[]
  readonly #counts: number[]
  #sum = 0
  #count = 0

  constructor(buckets: readonly number[]) {
    this.#buckets = buckets
    this.#counts = buckets.map(() => 0)
  }

  observe(value: number): void {
    this.#sum += value
    this.#count++
    for (let i = 0; i < this.#buckets.length; i++) if (value <= this.#buckets[i]) this.#counts[i]++
  }

  snapshot(): HistogramSnapshot {
    return { buckets: this.#buckets, counts: [...this.#counts], sum: this.#sum, count: this.#count }
  }
}
