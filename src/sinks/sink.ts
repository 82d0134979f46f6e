/**
 * The sink contract. Delivery hands a sink a batch of events read from the WAL; the sink answers
 * with a verdict and delivery moves the sink's cursor only on `delivered` (or once a permanent
 * failure went to the dead-letter store). A sink never sees the HTTP path.
 */
import type { NormalizedEvent } from '../intake/types.ts'

export interface SinkBatch {
  /** The events, in log order. May be empty: the batch then only moves a transactional sink's cursor. */
  readonly events: readonly NormalizedEvent[]
  /**
   * The same events as NDJSON bytes straight from the WAL (one line each, in order), present when
   * the batch covers whole records and the sink declared `acceptsNdjson`. A sink that loads NDJSON
   * natively (DuckDB's read_ndjson, ClickHouse's JSONEachRow) uses these and never touches
   * `events`, which is then decoded only on first access.
   */
  readonly ndjson?: Buffer
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
  /** The sink can load `SinkBatch.ndjson`; delivery then skips decoding events for it. */
  readonly acceptsNdjson?: boolean
  /**
   * Batch sizes this sink prefers over the delivery defaults (`deliveryBatchRows/Bytes`), e.g.
   * ClickHouse wants few large inserts. Absent or 0: the defaults.
   */
  readonly batchLimits?: { readonly rows?: number; readonly bytes?: number }
  open(): Promise<void>
  /**
   * Sinks that commit their cursor in the same transaction as the data (exactly-once on replay)
   * return it here; `null` means "nothing committed yet". Sinks without it omit the method and
   * delivery keeps their cursor in a file.
   */
  loadCursor?(): Promise<number | null>
  /**
   * Stores that can list what they hold answer the dedup keys (`event_id`) of events received
   * since `sinceMs` (Unix ms), at most `limit`, the newest ones, each with its receipt time (ms),
   * in receipt order. Delivery warms its dedup cache with them at start, so a restart does not
   * forget what was stored (src/dedup/delivery-check.ts).
   */
  recentKeys?(sinceMs: number, limit: number): Promise<Iterable<readonly [key: string, receivedAtMs: number]>>
  write(batch: SinkBatch): Promise<Verdict>
  /** Resolves when the sink's backend answers; rejects with the reason otherwise (readiness). */
  ping(): Promise<void>
  close(): Promise<void>
}

export const delivered: Verdict = Object.freeze({ kind: 'delivered' })
