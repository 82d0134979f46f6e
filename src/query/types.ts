export type GroupBy = 'channel' | 'hour' | 'day'

export interface MetricsQuery {
  readonly event_name: string
  /** Unix seconds, inclusive. */
  readonly from?: number
  /** Unix seconds, inclusive. */
  readonly to?: number
  readonly group_by?: GroupBy
}

export interface MetricsRow {
  /** Channel name, or the ISO-8601 UTC start of the hour/day (`2024-08-12T15:00:00Z`). */
  readonly group: string
  readonly total_events: number
  readonly unique_users: number
}

export interface Totals {
  readonly total_events: number
  readonly unique_users: number
}

/** A store that answers `GET /metrics`. Exact counts; a duplicate is never counted. */
export interface QueryBackend {
  totals(query: MetricsQuery): Promise<Totals>
  groups(query: MetricsQuery & { readonly group_by: GroupBy }): Promise<MetricsRow[]>
}

/** The most frequent event names in a window (the dashboard's "top events"). */
export interface TopEventsQuery {
  /** Unix seconds, inclusive. */
  readonly from?: number
  /** Unix seconds, inclusive. */
  readonly to?: number
  /** At most this many names, most events first (1–100). */
  readonly limit: number
}

export interface TopEventsRow {
  readonly event_name: string
  readonly total_events: number
  readonly unique_users: number
}

export type Bucket = 'minute' | 'hour' | 'day'

/** One event name over time, a row per (bucket, channel) that has events. */
export interface SeriesQuery {
  readonly event_name: string
  readonly from?: number
  readonly to?: number
  readonly bucket: Bucket
}

export interface SeriesRow {
  /** ISO-8601 UTC start of the bucket, e.g. `2024-08-12T15:04:00Z`. */
  readonly time: string
  readonly channel: string
  readonly total_events: number
  readonly unique_users: number
}

/**
 * The dashboard's event queries (issue 17), answered by the same store as `GET /metrics`.
 * A backend that has them implements this beside QueryBackend.
 */
export interface ExploreBackend {
  topEvents(query: TopEventsQuery): Promise<TopEventsRow[]>
  series(query: SeriesQuery): Promise<SeriesRow[]>
}
