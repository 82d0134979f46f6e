/**
 * The parameters of the dashboard's event queries on the operations port (`GET /api/events/top`,
 * `GET /api/events/series`); every error names the parameter, like `GET /metrics` on the API.
 */
import { spillwayError } from '../errors.ts'
import type { Bucket, SeriesQuery, TopEventsQuery } from '../query/types.ts'

const BUCKETS: readonly Bucket[] = ['minute', 'hour', 'day']
export const TOP_LIMIT_DEFAULT = 10
export const TOP_LIMIT_MAX = 100

export function parseTopQuery(params: URLSearchParams): TopEventsQuery {
  known(params, ['from', 'to', 'limit'])
  const { from, to } = range(params)
  const rawLimit = single(params, 'limit')
  let limit = TOP_LIMIT_DEFAULT
  if (rawLimit !== undefined) {
    if (!/^\d{1,3}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > TOP_LIMIT_MAX)
      throw invalid(`limit must be an integer from 1 to ${TOP_LIMIT_MAX}, got "${rawLimit.slice(0, 40)}"`)
    limit = Number(rawLimit)
  }
  return { ...(from !== undefined && { from }), ...(to !== undefined && { to }), limit }
}

export function parseSeriesQuery(params: URLSearchParams): SeriesQuery {
  known(params, ['event_name', 'from', 'to', 'bucket'])
  const name = single(params, 'event_name')
  if (name === undefined || name.trim() === '') throw invalid('event_name is required')
  const { from, to } = range(params)
  const bucket = single(params, 'bucket') ?? 'minute'
  if (!BUCKETS.includes(bucket as Bucket))
    throw invalid(`bucket must be one of minute, hour, day, got "${bucket.slice(0, 40)}"`)
  return {
    event_name: name,
    ...(from !== undefined && { from }),
    ...(to !== undefined && { to }),
    bucket: bucket as Bucket,
  }
}

function known(params: URLSearchParams, names: readonly string[]): void {
  for (const key of params.keys()) {
    if (!names.includes(key))
      throw invalid(`unknown parameter "${key.slice(0, 40)}"; known: ${names.join(', ')}`)
  }
}

function range(params: URLSearchParams): { from?: number; to?: number } {
  const from = seconds(params, 'from')
  const to = seconds(params, 'to')
  if (from !== undefined && to !== undefined && from > to)
    throw invalid(`from (${from}) must not be after to (${to})`)
  return { ...(from !== undefined && { from }), ...(to !== undefined && { to }) }
}

function single(params: URLSearchParams, key: string): string | undefined {
  const values = params.getAll(key)
  if (values.length === 0) return undefined
  if (values.length > 1) throw invalid(`${key} is given more than once`)
  return values[0]
}

function seconds(params: URLSearchParams, key: string): number | undefined {
  const value = single(params, key)
  if (value === undefined) return undefined
  if (!/^\d{1,12}$/.test(value))
    throw invalid(`${key} must be a Unix timestamp in seconds, got "${value.slice(0, 40)}"`)
  return Number(value)
}

function invalid(message: string) {
  return spillwayError('SPW_ERR_QUERY_INVALID', message)
}
