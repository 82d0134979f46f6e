import { spillwayError } from '../errors.ts'
import type { GroupBy, MetricsQuery } from '../query/types.ts'

const GROUPS: readonly GroupBy[] = ['channel', 'hour', 'day']
const KNOWN = new Set(['event_name', 'from', 'to', 'group_by'])

/** Validate `GET /metrics` parameters; every error names the parameter. */
export function parseMetricsQuery(params: Record<string, unknown>): MetricsQuery {
  for (const key of Object.keys(params)) {
    if (!KNOWN.has(key)) {
      throw invalid(`unknown parameter "${key}"; known: event_name, from, to, group_by`)
    }
  }
  const name = single(params, 'event_name')
  if (name === undefined || name.trim() === '') throw invalid('event_name is required')
  const from = seconds(params, 'from')
  const to = seconds(params, 'to')
  if (from !== undefined && to !== undefined && from > to)
    throw invalid(`from (${from}) must not be after to (${to})`)
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
