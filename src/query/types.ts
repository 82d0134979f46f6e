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
