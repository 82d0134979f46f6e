/**
 * `GET /metrics/top` and `GET /metrics/series`: the dashboard's event queries (query/types.ts
 * ExploreBackend) on the API port, for tools. Parsed in metrics-query.ts (each error names the
 * parameter); the store bounds them like `GET /metrics` (query/explore.ts, queryTimeoutMs,
 * queryQueueSize), and the same API key and rate-limit hooks run first.
 */
import type { FastifyInstance, RouteShorthandOptions } from 'fastify'
import type { ExploreBackend } from '../../query/types.ts'
import { parseSeriesQuery, parseTopQuery } from '../metrics-query.ts'

/** `guards`: the API key and rate-limit hooks of `GET /metrics`, run first. */
export function registerExploreRoutes(
  app: FastifyInstance,
  query: ExploreBackend,
  guards: RouteShorthandOptions['onRequest'],
): void {
  app.get('/metrics/top', { onRequest: guards }, async (request) => {
    const q = parseTopQuery(request.query as Record<string, unknown>)
    return { ...q, data: await query.topEvents(q) }
  })
  app.get('/metrics/series', { onRequest: guards }, async (request) => {
    const q = parseSeriesQuery(request.query as Record<string, unknown>)
    return { ...q, data: await query.series(q) }
  })
}
