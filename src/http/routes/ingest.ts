/**
 * The ingest routes in fastify. They run on bare node:http (ingest-route.ts): the API server hands
 * them over before fastify sees them; these routes exist for `app.inject()` and the route table,
 * and hand over the same way.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IngestHandler, IngestRoute } from '../ingest-route.ts'

export function registerIngestRoutes(app: FastifyInstance, ingest: IngestHandler): void {
  const handOver = (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    reply.hijack()
    ingest.handle(request.raw, reply.raw, request.routeOptions.url as IngestRoute)
    done()
  }
  const unreachable = async () => {}
  for (const route of ['/events', '/events/batch', '/events/bulk'] as const) {
    app.post(route, { onRequest: handOver }, unreachable)
  }
}
