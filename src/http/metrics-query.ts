import { spillwayError } from '../errors.ts'
import { BUCKETS, MAX_TOP_LIMIT } from '../query/explore.ts'
import type { Bucket, GroupBy, MetricsQuery, SeriesQuery, TopEventsQuery } from '../query/types.ts'

const GROUPS: readonly GroupBy[] = ['channel', 'hour', 'day']

/** Validate `GET /metrics` parameters; every error names the parameter. */
export function parseMetricsQuery(params: Record<string, unknown>): MetricsQuery {
  known(params, ['event_name', 'from', 'to', 'group_by'])
  const name = single(params, 'event_name')
  if (name === undefined || name.trim() === '') throw invalid('event_name is required')
  const { from, to } = window(params)
  const groupBy = single(params, 'group_by')
  if (groupBy !== undefined && !GROUPS.includes(groupBy as GroupBy)) {
    throw invalid(`group_by must be one of channel, hour, day, got "${groupBy.slice(0, 40)}"`)
  }
  return {
    event_name: name,
    ...(from !== undefined && { from }),
    ...(to !== undefined && { to }),
    ...(groupBy !== undefined && { group_by: groupBy as GroupBy }),
  }
}

/** Default number of names `GET /metrics/top` answers. */
export const DEFAULT_TOP_LIMIT = 10

/** Validate `GET /metrics/top` parameters (`from`, `to`, `limit`); every error names the parameter. */
export function parseTopQuery(params: Record<string, unknown>): TopEventsQuery {
  known(params, ['from', 'to', 'limit'])
  const { from, to } = window(params)
  const text = single(params, 'limit')
  let limit = DEFAULT_TOP_LIMIT
  if (text !== undefined) {
    limit = /^\d{1,3}$/.test(text) ? Number(text) : Number.NaN
    if (!(limit >= 1 && limit <= MAX_TOP_LIMIT))
      throw invalid(`limit must be a whole number from 1 to ${MAX_TOP_LIMIT}, got "${text.slice(0, 40)}"`)
  }
  return { ...(from !== undefined && { from }), ...(to !== undefined && { to }), limit }
}

/**
 * Validate `GET /metrics/series` parameters (`event_name`, `from`, `to`, `bucket`, default
 * `hour`); every error names the parameter. The bucket count is the backend's check (explore.ts).
 */
export function parseSeriesQuery(
  params: Record<string, unknown>,
  defaultBucket: Bucket = 'hour',
): SeriesQuery {
  known(params, ['event_name', 'from', 'to', 'bucket'])
  const name = single(params, 'event_name')
  if (name === undefined || name.trim() === '') throw invalid('event_name is required')
  const { from, to } = window(params)
  const bucket = single(params, 'bucket') ?? defaultBucket
  if (!BUCKETS.includes(bucket as Bucket))
    throw invalid(`bucket must be one of minute, hour, day, got "${bucket.slice(0, 40)}"`)
  return {
    event_name: name,
    ...(from !== undefined && { from }),
    ...(to !== undefined && { to }),
    bucket: bucket as Bucket,
  }
}

function known(params: Record<string, unknown>, names: readonly string[]): void {
  for (const key of Object.keys(params)) {
    if (!names.includes(key)) throw invalid(`unknown parameter "${key}"; known: ${names.join(', ')}`)
  }
}

function window(params: Record<string, unknown>): { from?: number; to?: number } {
  const from = seconds(params, 'from')
  const to = seconds(params, 'to')
  if (from !== undefined && to !== undefined && from > to)
    throw invalid(`from (${from}) must not be after to (${to})`)
  return { from, to }
}

function single(params: Record<string, unknown>, key: string): string | undefined {
  const value = params[key]
  if (value === undefined) return undefined
  if (Array.isArray(value)) throw invalid(`${key} is given more than once`)
  return String(value)
}

function seconds(params: Record<string, unknown>, key: string): number | undefined {
  const value = single(params, key)
  if (value === undefined) return undefined
  if (!/^\d{1,12}$/.test(value))
    throw invalid(`${key} must be a Unix timestamp in seconds, got "${value.slice(0, 40)}"`)
  return Number(value)
}

function invalid(message: string) {
  return spillwayError('SPW_ERR_QUERY_INVALID', message)
}
