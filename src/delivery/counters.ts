/**
 * What one sink's delivery counts for `stats()` (and from there the `sink_*` metrics): every part
 * of the chain reports into the same object, so no part keeps a counter another part must read.
 */
import { BATCH_LATENCY_MS_BUCKETS, BATCH_ROWS_BUCKETS, Histogram } from '../telemetry/histogram.ts'

export class DeliveryCounters {
  deliveredRows = 0
  deliveredBatches = 0
  /** Attempts that ended in retry: a retry verdict, a throw, or a timeout. */
  retries = 0
  /** Of those, attempts the sink did not answer within the timeout. */
  timeouts = 0
  /** Pieces the sink refused with a permanent verdict (before isolation). */
  refusedBatches = 0
  deadLettered = 0
  lastError: string | null = null
  lastErrorAt: number | null = null
  lastDeliveredAt: number | null = null
  readonly rows = new Histogram(BATCH_ROWS_BUCKETS)
  readonly latencyMs = new Histogram(BATCH_LATENCY_MS_BUCKETS)

  /** A piece of `rows` events the sink confirmed; `started` is its first attempt's performance.now(). */
  delivered(rows: number, started: number): void {
    this.deliveredRows += rows
    this.deliveredBatches++
    this.lastDeliveredAt = Date.now()
    this.rows.observe(rows)
    this.latencyMs.observe(performance.now() - started)
  }

  fail(error: Error): void {
    this.lastError = error.message
    this.lastErrorAt = Date.now()
  }
}
