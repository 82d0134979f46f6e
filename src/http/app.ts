/**
 * The HTTP API (docs/ARCHITECTURE.md "The API"). Routes are thin: admission, body, then the
 * ingestor or the query backend. Every answer is JSON, every error is `{"error": "<one sentence>"}`
 * with the status of its SpillwayError. The server is api-server.ts, the guards request-guards.ts,
 * the routes one file per area in routes/ (health, query, docs, ingest).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify'
import type { Config } from '../config/schema.ts'
import type { Ingestor } from '../ingest/ingestor.ts'
import type { ExploreBackend, QueryBackend } from '../query/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { ServerMetrics } from '../telemetry/metrics.ts'
import { registerAccessLog } from './access-log.ts'
import type { Admission } from './admission.ts'
import { apiServer } from './api-server.ts'
import { registerBodyParsers } from './body.ts'
import { parseTrustProxy } from './client-ip.ts'
import { errorAnswer, IngestHandler, ingestRouteOf, requestIdOf } from './ingest-route.ts'
import { publicMessage } from './public-errors.ts'
import { clientBucket, type TokenSource } from './rate-limit.ts'
import type { Readiness } from './readiness.ts'
import { type RequestGuards, requestGuards } from './request-guards.ts'
import { registerDocsRoutes } from './routes/docs.ts'
import { registerExploreRoutes } from './routes/explore.ts'
import { registerHealthRoutes } from './routes/health.ts'
import { registerIngestRoutes } from './routes/ingest.ts'
import { registerQueryRoutes } from './routes/query.ts'

export type { Readiness } from './readiness.ts'

export interface AppDeps {
  readonly config: Config
  readonly ingestor: Ingestor
  /** `GET /metrics` and the explore routes (`/metrics/top`, `/metrics/series`). */
  readonly query: QueryBackend & ExploreBackend
  readonly readiness: () => Promise<Readiness>
  readonly logger: Logger
  /** The bounds of docs/ARCHITECTURE.md "Admission", checked before a body is read (admission.ts). */
  readonly admission: Admission
  readonly metrics: ServerMetrics
  /**
   * Where rate-limit tokens come from when they are not this process's to keep (a cluster worker
   * asks its primary, so N workers share one bucket per key); default: a RateLimiter built here.
   */
  readonly limiter?: TokenSource
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, ingestor, logger, admission, metrics } = deps
  let fast: IngestHandler | undefined
  // Behind a load balancer (client-ip.ts): whose X-Forwarded-For names the client; off by default.
  const trusted = parseTrustProxy(config.trustProxy)
  const clientAddress = (request: IncomingMessage) =>
    trusted ? trusted.clientIp(request) : (request.socket.remoteAddress ?? 'unknown')
  const app = Fastify({
    logger: false,
    trustProxy: trusted ? trusted.trusts : false,
    bodyLimit: config.maxBatchBytes,
    serverFactory: (handler) =>
      apiServer(config, handler as (req: IncomingMessage, res: ServerResponse) => void, () => fast),
    // A client's (or a proxy's) X-Request-Id is kept when it is sane, so one id follows a request
    // through every hop's logs; otherwise a new one. Either way it is echoed in the answer.
    genReqId: (request) => requestIdOf(request.headers['x-request-id']),
    // While closing, fastify's own 503 has no Retry-After; with this off, requests still get
    // `Connection: close`, and the ingest routes refuse in `admit` (ingestor closed) with a 503
    // that has one.
    return503OnClosing: false,
  })
  registerBodyParsers(app)
  const guards = requestGuards(app, { config, logger, limiter: deps.limiter })
  addRequestHooks(app, guards, metrics, logger)
  if (config.accessLog) registerAccessLog(app, logger, isIngest)

  await registerDocsRoutes(app)
  const { apiKeys, burst, limiter } = guards
  fast = new IngestHandler({
    config,
    ingestor,
    admission,
    metrics,
    logger,
    apiKeys,
    burst,
    ...(limiter && { limiter }),
    clientIp: (request) => clientBucket(clientAddress(request)),
    clientAddress,
  })
  registerIngestRoutes(app, fast)
  registerQueryRoutes(app, deps.query, guards.queryHooks)
  registerExploreRoutes(app, deps.query, guards.queryHooks)
  registerHealthRoutes(app, deps.readiness, logger)
  return app
}

/** The request id header, the request metrics of fastify's routes, JSON errors, the 404. */
function addRequestHooks(
  app: FastifyInstance,
  guards: RequestGuards,
  metrics: ServerMetrics,
  logger: Logger,
) {
  app.setErrorHandler((error: FastifyError, request, reply) => sendError(error, request, reply, logger))
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    // The ingest routes count their own answers (ingest-route.ts).
    if (isIngest(request)) return done()
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.request(route, request.method, reply.statusCode, reply.elapsedTime, false)
    const key = guards.keyOf(request)
    if (key !== undefined) metrics.keyedRequest(key, route, reply.statusCode)
    done()
  })
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}; see /docs` })
  })
}

function isIngest(request: FastifyRequest): boolean {
  return ingestRouteOf(request.method, request.routeOptions.url) !== undefined
}

function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply, logger: Logger) {
  const answer = errorAnswer(error, request.routeOptions.bodyLimit)
  const generic = publicMessage(error)
  if (generic !== undefined) {
    // The store's own words (addresses, driver messages) go to the log only (public-errors.ts).
    logger.warn({ err: error, reqId: request.id, url: request.url }, 'QueryFailed')
    return reply.code(answer.status).headers(answer.headers).send({ error: generic })
  }
  if (answer.status === 503) {
    // A refusal the client retries (overload, full disk, shutdown); its cause is logged once where
    // it happens (WalGroupFailed, …), not once per refused request.
    logger.debug({ err: error, reqId: request.id, url: request.url }, 'request refused')
  } else if (answer.status >= 500) {
    logger.error({ err: error, reqId: request.id, url: request.url }, 'request failed')
  }
  return reply.code(answer.status).headers(answer.headers).send({ error: answer.message })
}
