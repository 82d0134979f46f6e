/**
 * The rules every backend applies to the dashboard's event queries (types.ts ExploreBackend), so
 * DuckDB, ClickHouse and the memory store refuse and bound them alike:
 *
 * - `limit` of topEvents is a whole number 1–100.
 * - A series never has more than MAX_SERIES_BUCKETS buckets. With both bounds the window is
 *   checked before any work (the error names `from`/`to` and `bucket`); with an open end the
 *   store reads at most MAX_SERIES_ROWS + 1 rows and refuses the answer when it holds more
 *   buckets than the bound (or was cut), so an open-ended minute series of years cannot build a
 *   huge answer. The scan itself is bounded by `queryTimeoutMs` like any query.
 * - Rows: topEvents most events first, then name; series by bucket start ascending, then channel.
 */
import { spillwayError } from '../errors.ts'
import type { Bucket, SeriesQuery, SeriesRow, TopEventsQuery } from './types.ts'

export const MAX_TOP_LIMIT = 100
export const MAX_SERIES_BUCKETS = 10_000
/** Rows a series may read when a bound is open: every bucket with several channels. */
export const MAX_SERIES_ROWS = MAX_SERIES_BUCKETS * 8

export const BUCKETS: readonly Bucket[] = ['minute', 'hour', 'day']
export const BUCKET_SECONDS: Readonly<Record<Bucket, number>> = { minute: 60, hour: 3600, day: 86_400 }

/** Checks a topEvents query; throws SPW_ERR_QUERY_INVALID naming the parameter. */
export function checkTopEvents(query: TopEventsQuery): void {
  const { limit } = query
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_TOP_LIMIT)
    throw invalid(
      `limit must be a whole number from 1 to ${MAX_TOP_LIMIT}, got ${String(limit).slice(0, 40)}`,
    )
  checkRange(query)
}

/** Checks a series query (name, bucket, bounds, bucket count); throws naming the parameter. */
export function checkSeries(query: SeriesQuery): void {
  if (typeof query.event_name !== 'string') throw invalid('event_name must be a string')
  if (!BUCKETS.includes(query.bucket))
    throw invalid(`bucket must be one of minute, hour, day, got "${String(query.bucket).slice(0, 40)}"`)
  checkRange(query)
  const { from, to } = query
  if (from !== undefined && to !== undefined && from <= to) {
    const buckets = bucketCount(from, to, query.bucket)
    if (buckets > MAX_SERIES_BUCKETS)
      throw invalid(
        `from…to spans ${buckets} ${query.bucket} buckets, more than ${MAX_SERIES_BUCKETS}; narrow from/to or use a larger bucket`,
      )
  }
}

/** Buckets of `bucket` that the inclusive window `from…to` touches. */
export function bucketCount(from: number, to: number, bucket: Bucket): number {
  const unit = BUCKET_SECONDS[bucket]
  return Math.floor(to / unit) - Math.floor(from / unit) + 1
}

/**
 * The rows of an open-ended series as a store read them (at most MAX_SERIES_ROWS + 1), refused
 * when they are more than the bound allows.
 */
export function boundedSeries(rows: SeriesRow[], query: SeriesQuery): SeriesRow[] {
  const times = new Set(rows.map((row) => row.time))
  if (rows.length > MAX_SERIES_ROWS || times.size > MAX_SERIES_BUCKETS)
    throw invalid(
      `the series of "${query.event_name.slice(0, 40)}" has more than ${MAX_SERIES_BUCKETS} ${query.bucket} buckets; give from and to, or use a larger bucket`,
    )
  return rows
}

/** Unix seconds → `2024-08-12T15:04:00Z`. */
export function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
}

function checkRange(query: { readonly from?: number; readonly to?: number }): void {
  for (const name of ['from', 'to'] as const) {
    const v = query[name]
    if (v !== undefined && !Number.isSafeInteger(v))
      throw invalid(`${name} must be a Unix timestamp in whole seconds`)
  }
}

function invalid(message: string) {
  return spillwayError('SPW_ERR_QUERY_INVALID', message)
}
