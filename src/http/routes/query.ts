/** `GET /metrics`: the aggregate query (metrics-query.ts parses it), answered by the query backend. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { QueryBackend } from '../../query/types.ts'
import { parseMetricsQuery } from '../metrics-query.ts'

type Hook = (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => void

/** `guards`: the API key and rate-limit hooks the route runs first (request-guards.ts). */
export function registerQueryRoutes(app: FastifyInstance, query: QueryBackend, guards: Hook[]): void {
  app.get('/metrics', { onRequest: guards }, async (request) => {
    const q = parseMetricsQuery(request.query as Record<string, unknown>)
    const range = { ...(q.from !== undefined && { from: q.from }), ...(q.to !== undefined && { to: q.to }) }
    if (q.group_by === undefined) {
      const totals = await query.totals(q)
      return { event_name: q.event_name, ...range, ...totals }
    }
    const data = await query.groups({ ...q, group_by: q.group_by })
    return { event_name: q.event_name, ...range, grouped_by: q.group_by, data }
  })
}
