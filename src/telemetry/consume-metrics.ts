/** `spillway consume`'s series: what it took from the log and committed back (src/consume/). */
import type { Registry } from 'prom-client'
import { monotonic, scrapeGauge } from './series.ts'

export interface ConsumeReading {
  /** `kafka` or `nats`. */
  readonly log: string
  readonly fetched: number
  readonly committed: number
  readonly uncommittedBatches: number
}

export function registerConsumeMetrics(registry: Registry, consume: () => ConsumeReading): void {
  monotonic(
    registry,
    'consume_messages_fetched_total',
    'Messages `spillway consume` fetched from the log (redeliveries included).',
    ['log'],
    () => [[{ log: consume().log }, consume().fetched]],
  )
  monotonic(
    registry,
    'consume_messages_committed_total',
    'Messages whose offsets were committed (acked): every sink stored or dead-lettered them.',
    ['log'],
    () => [[{ log: consume().log }, consume().committed]],
  )
  scrapeGauge(
    registry,
    'consume_uncommitted_batches',
    'Fetched batches waiting for every sink before their offsets are committed.',
    () => consume().uncommittedBatches,
  )
}
