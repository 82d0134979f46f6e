/** The WAL's series (docs/ARCHITECTURE.md "The write-ahead log"). */
import type { Registry } from 'prom-client'
import { monotonic, scrapeGauge } from './series.ts'

export interface WalReading {
  /** End of the durable log (byte position). */
  readonly head: number
  /** Durable bytes not yet delivered to the slowest sink. */
  readonly backlogBytes: number
  /** Bytes appended, not yet durable. */
  readonly pendingBytes: number
  readonly fsyncs: number
  readonly records: number
  readonly bytes: number
  readonly failedGroups: number
  /** Damaged ranges skipped and kept aside (src/wal/damage.ts), and their bytes. */
  readonly damagedRanges?: number
  readonly damagedBytes?: number
}

/** The group commit's queue of the process that answers ingest requests (its own WAL or shard). */
export function registerCommitQueueMetrics(registry: Registry, queuedEvents: () => number): void {
  scrapeGauge(registry, 'ingest_queue_size', 'Events waiting for a WAL group commit.', queuedEvents)
}

/** The WAL delivery reads (not in a cluster worker, whose shard the primary reports). */
export function registerWalMetrics(registry: Registry, wal: () => WalReading): void {
  scrapeGauge(registry, 'wal_head_bytes', 'End of the durable WAL (a byte position).', () => wal().head)
  scrapeGauge(
    registry,
    'wal_backlog_bytes',
    'WAL bytes durable but not yet delivered to the slowest sink.',
    () => wal().backlogBytes,
  )
  scrapeGauge(registry, 'wal_pending_bytes', 'WAL bytes appended, not yet durable.', () => wal().pendingBytes)
  const counter = (name: string, help: string, read: (w: WalReading) => number) =>
    monotonic(registry, name, help, [], () => [[{}, read(wal())]])
  counter('wal_fsyncs_total', 'fdatasync calls of the WAL writer.', (w) => w.fsyncs)
  counter('wal_records_total', 'Records made durable in the WAL.', (w) => w.records)
  counter('wal_written_bytes_total', 'Bytes made durable in the WAL.', (w) => w.bytes)
  counter('wal_failed_groups_total', 'Group commits that failed (ENOSPC, EIO…).', (w) => w.failedGroups)
  counter(
    'wal_damaged_ranges_total',
    'Damaged WAL ranges skipped up to the next valid record (each held at least one record).',
    (w) => w.damagedRanges ?? 0,
  )
  counter(
    'wal_damaged_bytes_total',
    'Bytes of damaged WAL ranges skipped; each range is kept in <dataDir>/wal/damaged/.',
    (w) => w.damagedBytes ?? 0,
  )
}
