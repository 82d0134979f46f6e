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

/** The `le` bounds of `sink_batch_rows` and `sink_batch_latency_ms` (the delivery loop observes them). */
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

/** Sum of two snapshots with the same buckets (the bucket layout is fixed in the code). */
export function addHistograms(a: HistogramSnapshot, b: HistogramSnapshot): HistogramSnapshot {
  if (a.buckets.length !== b.buckets.length || a.buckets.some((le, i) => le !== b.buckets[i])) return b
  return {
    buckets: a.buckets,
    counts: a.counts.map((c, i) => c + b.counts[i]),
    sum: a.sum + b.sum,
    count: a.count + b.count,
  }
}
