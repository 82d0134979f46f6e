/**
 * The parameters of the dashboard's event queries on the operations port (`GET /api/events/top`,
 * `GET /api/events/series`): the API's own rules (http/metrics-query.ts, every error naming the
 * parameter), with a minute bucket by default — the dashboard shows the last hour.
 */
import { parseSeriesQuery as parseSeries, parseTopQuery as parseTop } from '../http/metrics-query.ts'
import type { SeriesQuery, TopEventsQuery } from '../query/types.ts'

export function parseTopQuery(params: URLSearchParams): TopEventsQuery {
  return parseTop(record(params))
}

export function parseSeriesQuery(params: URLSearchParams): SeriesQuery {
  return parseSeries(record(params), 'minute')
}

/** A query string as fastify hands it to the API's parsers: a repeated key is an array. */
function record(params: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key)
    out[key] = values.length === 1 ? values[0] : values
  }
  return out
}
