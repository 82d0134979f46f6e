/**
 * The sink contract. Delivery hands a sink a batch of events read from the WAL; the sink answers
 * with a verdict and delivery moves the sink's cursor only on `delivered` (or once a permanent
 * failure went to the dead-letter store). A sink never sees the HTTP path.
 */
import type { NormalizedEvent } from '../intake/types.ts'

export interface SinkBatch {
  readonly events: readonly NormalizedEvent[]
  /** WAL position of the first record in the batch. */
  readonly from: number
  /** WAL position just past the last record: the sink's cursor once this batch is delivered. */
  readonly to: number
}

export type Verdict =
  | { readonly kind: 'delivered' }
  /** Transient: try the same batch again, after `afterMs` if the sink knows (throttling). */
  | { readonly kind: 'retry'; readonly error: Error; readonly afterMs?: number }
  /** The data itself is refused: retrying cannot help; the events go to the dead-letter store. */
  | { readonly kind: 'permanent'; readonly error: Error }

export interface Sink {
  readonly name: string
  open(): Promise<void>
  /**
   * Sinks that commit their cursor in the same transaction as the data (exactly-once on replay)
   * return it here; `null` means "nothing committed yet". Sinks without it omit the method and
   * delivery keeps their cursor in a file.
   */
  loadCursor?(): Promise<number | null>
  write(batch: SinkBatch): Promise<Verdict>
  /** Resolves when the sink's backend answers; rejects with the reason otherwise (readiness). */
  ping(): Promise<void>
  close(): Promise<void>
}

export const delivered: Verdict = Object.freeze({ kind: 'delivered' })
