/**
 * The delivery thread's series: read at scrape time (`DeliveryHost.stats()`, once per scrape) and
 * kept monotonic across restarts of that thread (delivery-totals.ts). The dedup and `events_*`
 * families read the same once-per-scrape reading through `totals()` and `firstSink()`.
 */
import { Gauge, type Registry } from 'prom-client'
import { DeliveryTotals, type SinkCounter, type SinkReading, type SinkTotals } from './delivery-totals.ts'
import type { HistogramSnapshot } from './histogram.ts'
import { monotonic, snapshotHistogram } from './series.ts'

export interface DeliveryReading {
  /** The delivery thread's generation (the host's restart count when the reading was taken). */
  readonly generation: number
  readonly running: boolean
  readonly sinks: readonly SinkReading[]
}

/** Per sink, from the shared cursors (no message to the delivery thread). */
export type SinkBacklogReading = () => readonly { readonly sink: string; readonly bytes: number }[]

export class DeliveryMetrics {
  readonly #read: (() => Promise<DeliveryReading | null>) | undefined
  readonly #totals = new DeliveryTotals()
  #reading: Promise<void> | undefined
  #up = false
  #restarts = 0

  /** Without `read` (a cluster worker: delivery runs in its primary) every reading is empty. */
  constructor(read?: () => Promise<DeliveryReading | null>) {
    this.#read = read
  }

  /** Delivery totals per sink, refreshed at most once per scrape (every collect of a scrape shares it). */
  async totals(): Promise<Map<string, SinkTotals>> {
    const read = this.#read
    if (!read) return new Map()
    this.#reading ??= (async () => {
      try {
        const reading = await read()
        if (reading) {
          this.#up = reading.running
          this.#restarts = Math.max(this.#restarts, reading.generation)
          if (reading.running) this.#totals.update(reading.generation, reading.sinks)
        }
      } finally {
        this.#reading = undefined
      }
    })()
    await this.#reading
    return this.#totals.totals()
  }

  /** The latest reading as the thread gave it (for gauges: breaker state, cache sizes). */
  get latest(): readonly SinkReading[] {
    return this.#totals.latest
  }

  /**
   * The first sink's latest reading: the dedup counters and L2 state are read from it (every
   * sink's check skips the same events and shares the one L2).
   */
  firstSink(): SinkReading | undefined {
    return this.#totals.latest.find((s) => s.slot === 0)
  }

  /** The delivery thread's own series (not in a cluster worker). */
  register(registry: Registry, sinkBacklog: SinkBacklogReading): void {
    const registers = [registry]
    new Gauge({
      name: 'sink_backlog_bytes',
      help: 'WAL bytes durable but not yet delivered, per sink.',
      labelNames: ['sink'],
      registers,
      collect() {
        this.reset()
        for (const { sink, bytes } of sinkBacklog()) this.set({ sink }, bytes)
      },
    })
    const sinkCounter = (name: string, help: string, key: SinkCounter) =>
      monotonic(registry, name, help, ['sink'], async () =>
        [...(await this.totals()).entries()].map(([sink, t]) => [{ sink }, t[key]]),
      )
    sinkCounter('events_published_total', 'Events delivered to each sink.', 'deliveredRows')
    sinkCounter(
      'sink_retries_total',
      'Sink writes that ended in retry (verdict, error or timeout).',
      'retries',
    )
    sinkCounter('sink_timeouts_total', 'Sink writes not answered within the delivery timeout.', 'timeouts')
    sinkCounter('sink_breaker_opens_total', 'Times the sink circuit breaker opened.', 'breakerOpens')
    sinkCounter(
      'sink_refused_batches_total',
      'Sink batches refused permanently (then split to isolate the bad events).',
      'refusedBatches',
    )
    const self = this
    new Gauge({
      name: 'sink_breaker_state',
      help: 'Circuit breaker state per sink: 1 for the current state (closed, open, half-open).',
      labelNames: ['sink', 'state'],
      registers,
      async collect() {
        await self.totals()
        this.reset()
        for (const s of self.latest) {
          for (const state of ['closed', 'open', 'half-open'])
            this.set({ sink: s.sink, state }, s.breaker === state ? 1 : 0)
        }
      },
    })
    new Gauge({
      name: 'delivery_thread_up',
      help: '1 while the delivery thread runs, 0 while it is being restarted.',
      registers,
      async collect() {
        await self.totals()
        this.set(self.#up ? 1 : 0)
      },
    })
    monotonic(
      registry,
      'delivery_thread_restarts_total',
      'Unexpected deaths of the delivery thread (each followed by a restart).',
      [],
      async () => {
        await this.totals()
        return [[{}, this.#restarts]]
      },
    )
    const histogram = (name: string, help: string, pick: (t: SinkTotals) => HistogramSnapshot) =>
      snapshotHistogram(registry, name, help, async () =>
        [...(await this.totals()).entries()].map(([sink, t]) => ({ labels: { sink }, snapshot: pick(t) })),
      )
    histogram('sink_batch_rows', 'Events per batch delivered to each sink.', (t) => t.batchRows)
    histogram(
      'sink_batch_latency_ms',
      'Time to deliver one batch to each sink, in milliseconds.',
      (t) => t.batchLatencyMs,
    )
  }
}
