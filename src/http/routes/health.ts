/** `GET /health` (the process runs) and `GET /ready` (it can take events: docs/ARCHITECTURE.md "The API"). */
import type { FastifyInstance } from 'fastify'
import type { Logger } from '../../telemetry/logger.ts'
import { publicReadiness, readinessLogger } from '../public-errors.ts'
import type { Readiness } from '../readiness.ts'

const RETRY_AFTER_SECONDS = '1'

export function registerHealthRoutes(
  app: FastifyInstance,
  readiness: () => Promise<Readiness>,
  logger: Logger,
): void {
  app.get('/health', async () => ({ status: 'healthy' }))
  // Anyone may ask: generic words out, the real reasons to the log with the request id (public-errors.ts).
  const logNotReady = readinessLogger(logger)
  app.get('/ready', async (request, reply) => {
    const state = await readiness()
    if (state.ok) return { status: 'ready', ...publicReadiness(state) }
    logNotReady(request.id, state)
    reply.code(503).header('retry-after', RETRY_AFTER_SECONDS)
    return { status: 'not ready', ...publicReadiness(state) }
  })
}
