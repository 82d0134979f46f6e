/**
 * Delivery counters that stay monotonic across delivery-thread restarts.
 *
 * The counters live in the delivery thread (src/delivery/loop.ts) and start from zero when the
 * host restarts a dead thread. Prometheus reads a drop as a counter reset and, with `rate()`,
 * would only lose the increase since the previous scrape; but the totals (`events_published_total`
 * compared with `events_accepted_total`) must not go back. So every reading is tagged with the
 * thread's generation (the host's restart count) and, when the generation changes — or a counter
 * goes down anyway — the last values seen from the old thread are folded into a base that is added
 * to every later reading. Increments made by the old thread after its last reading are lost to the
 * totals (they were never observed), which is the same resolution Prometheus itself has.
 */

import { addHistograms, type HistogramSnapshot } from './histogram.ts'

export const SINK_COUNTERS = [
  'deliveredRows',
  'deliveredBatches',
  'retries',
  'timeouts',
  'breakerOpens',
  'refusedBatches',
  'deadLettered',
  'duplicatesDelivery',
  'duplicatesL2',
] as const

export type SinkCounter = (typeof SINK_COUNTERS)[number]

export type SinkTotals = { readonly [K in SinkCounter]: number } & {
  readonly batchRows: HistogramSnapshot
  readonly batchLatencyMs: HistogramSnapshot
}

/**
 * What telemetry reads of one sink's delivery loop: the loop's `stats()` (src/delivery/loop.ts)
 * gives this and more. Declared here so telemetry imports nothing from the areas it observes.
 */
export type SinkReading = { readonly [K in SinkCounter]: number } & {
  readonly sink: string
  /** Index of the sink in the configured list; slot 0 is the first sink. */
  readonly slot: number
  readonly breaker: 'closed' | 'open' | 'half-open'
  /** Keys in this sink's delivery-time dedup cache. */
  readonly dedupCacheKeys: number
  /** The shared L2 layer's state, null when no Redis is configured. */
  readonly dedupL2: { readonly state: 'up' | 'down' | 'connecting'; readonly errors: number } | null
  readonly batchRows: HistogramSnapshot
  readonly batchLatencyMs: HistogramSnapshot
}

export class DeliveryTotals {
  #generation: number | undefined
  /** Per sink: what earlier threads counted (folded on restart). */
  readonly #base = new Map<string, SinkTotals>()
  /** Per sink: the latest reading of the current thread. */
  readonly #last = new Map<string, SinkTotals>()
  #latest: readonly SinkReading[] = []

  /** Takes one reading of the delivery thread `generation` (readings of a thread must be in order). */
  update(generation: number, sinks: readonly SinkReading[]): void {
    if (this.#generation !== undefined && generation !== this.#generation) {
      for (const sink of this.#last.keys()) this.#fold(sink)
    }
    this.#generation = generation
    for (const stats of sinks) {
      const reading = totalsOf(stats)
      const previous = this.#last.get(stats.sink)
      if (previous && wentDown(previous, reading)) this.#fold(stats.sink)
      this.#last.set(stats.sink, reading)
    }
    this.#latest = sinks
  }

  /** Totals since the server started, per sink. */
  totals(): Map<string, SinkTotals> {
    const result = new Map<string, SinkTotals>()
    for (const sink of new Set([...this.#base.keys(), ...this.#last.keys()])) {
      const base = this.#base.get(sink)
      const last = this.#last.get(sink)
      result.set(sink, base && last ? add(base, last) : (base ?? last)!)
    }
    return result
  }

  /** The latest reading as the thread gave it (for gauges: phase, breaker state). */
  get latest(): readonly SinkReading[] {
    return this.#latest
  }

  #fold(sink: string): void {
    const last = this.#last.get(sink)
    if (!last) return
    const base = this.#base.get(sink)
    this.#base.set(sink, base ? add(base, last) : last)
    this.#last.delete(sink)
  }
}

function totalsOf(stats: SinkReading): SinkTotals {
  const counters = Object.fromEntries(SINK_COUNTERS.map((k) => [k, Number(stats[k] ?? 0)])) as {
    [K in SinkCounter]: number
  }
  return { ...counters, batchRows: stats.batchRows, batchLatencyMs: stats.batchLatencyMs }
}

function wentDown(before: SinkTotals, after: SinkTotals): boolean {
  return (
    SINK_COUNTERS.some((k) => after[k] < before[k]) ||
    after.batchRows.count < before.batchRows.count ||
    after.batchLatencyMs.count < before.batchLatencyMs.count
  )
}

function add(a: SinkTotals, b: SinkTotals): SinkTotals {
  const counters = Object.fromEntries(SINK_COUNTERS.map((k) => [k, a[k] + b[k]])) as {
    [K in SinkCounter]: number
  }
  return {
    ...counters,
    batchRows: addHistograms(a.batchRows, b.batchRows),
    batchLatencyMs: addHistograms(a.batchLatencyMs, b.batchLatencyMs),
  }
}
