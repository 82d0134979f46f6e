/**
 * The HTTP API (docs/ARCHITECTURE.md "The API"). Routes are thin: admission, body, then the
 * ingestor or the query
 * backend. Every answer is JSON, every error is `{"error": "<one sentence>"}` with the status of
 * its SpillwayError.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify'
import type { Config } from '../config/schema.ts'
import type { ExploreBackend, QueryBackend } from '../query/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { ServerMetrics } from '../telemetry/metrics.ts'
import type { Admission } from './admission.ts'
import { ApiKeys, presentedKey } from './auth.ts'
import { registerBodyParsers } from './body.ts'
import { parseTrustProxy } from './client-ip.ts'
import type { Ingestor } from './ingest.ts'
import { errorAnswer, IngestHandler, type IngestRoute, ingestRouteOf, requestIdOf } from './ingest-route.ts'
import { parseMetricsQuery } from './metrics-query.ts'
import { openapiDocument } from './openapi.ts'
import { registerExploreRoutes } from './routes/explore.ts'
import { publicMessage, publicReadiness, readinessLogger } from './public-errors.ts'
import {
  clientBucket,
  RateLimiter,
  rateLimitHeaders,
  rateLimitMessage,
  type TokenSource,
} from './rate-limit.ts'

export interface Readiness {
  readonly ok: boolean
  readonly error?: string
  readonly details?: Record<string, unknown>
}

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

const RETRY_AFTER_SECONDS = '1'
/** The answer to a connection over `maxConnections`, written before it is closed. */
const CONNECTIONS_FULL = (() => {
  const body = '{"error":"server has too many open connections (maxConnections); retry after 1 s"}'
  return Buffer.from(
    'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n' +
      `Retry-After: 1\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  )
})()
const refusedSockets = new WeakSet<Socket>()

/**
 * The API's node:http server: the ingest routes go to the fast handler (ingest-route.ts), every
 * other request to fastify. It also answers `Expect: 100-continue` itself (an oversized or refused
 * ingest request gets its answer at once, not `100 Continue`), bounds the open connections, and
 * applies the timeouts against slow clients (node answers 408; its check runs on a timer, 30 s by
 * default, so the timer follows the smaller timeout).
 */
function apiServer(
  config: Config,
  fastifyHandler: (req: IncomingMessage, res: ServerResponse) => void,
  fast: () => IngestHandler | undefined,
): Server {
  const headersTimeout = Math.min(config.headersTimeoutMs, config.requestTimeoutMs)
  const server = createServer(
    {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(headersTimeout / 4))),
    },
    (req, res) => {
      if (refusedSockets.has(req.socket)) return
      const route = ingestRouteOf(req.method, req.url)
      const handler = route && fast()
      if (handler) handler.handle(req, res, route)
      else fastifyHandler(req, res)
    },
  )
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (refusedSockets.has(req.socket)) return
    const route = ingestRouteOf(req.method, req.url)
    const handler = route && fast()
    if (handler) return handler.handle(req, res, route, true)
    res.writeContinue()
    fastifyHandler(req, res)
  })
  let open = 0
  server.on('connection', (socket: Socket) => {
    open++
    socket.once('close', () => open--)
    if (open > config.maxConnections) {
      refusedSockets.add(socket)
      socket.end(CONNECTIONS_FULL)
    }
  })
  server.setTimeout(60_000)
  return server
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, ingestor, query, logger, admission, metrics } = deps
  let fast: IngestHandler | undefined
  // Behind a load balancer (client-ip.ts): whose X-Forwarded-For names the client; off by default.
  const trusted = parseTrustProxy(config.trustProxy)
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
  // API keys (auth.ts): the ingest routes and GET /metrics need one when any is configured.
  const apiKeys = new ApiKeys({ inline: config.apiKeys, file: config.apiKeysFile, logger })
  const keyOf = new WeakMap<FastifyRequest, string>()
  const authenticate = (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
    const presented = presentedKey(request.headers)
    try {
      keyOf.set(request, apiKeys.authenticate(presented))
      done()
    } catch (error) {
      keyOf.set(request, presented === undefined ? 'missing' : 'unrecognised')
      if (limiter) refusedKey(request, reply, error as Error, done)
      else done(error as Error)
    }
  }
  const keyed = apiKeys.enabled ? [authenticate] : []
  // Rate limits (rate-limit.ts): per key label, else per client IP; after authentication (an
  // unauthenticated request costs no token), before admission.
  const burst = rateLimitBurst(config)
  const limiter = config.rateLimitPerSecond > 0 ? (deps.limiter ?? rateLimiterFor(config, logger)) : undefined
  if (limiter) app.addHook('onClose', () => limiter.close())
  // Refused API keys (per client: a key-guessing client is slowed) and GET /metrics queries (per
  // key or client) take tokens too, from buckets of their own.
  const clientOf = (request: FastifyRequest) => clientBucket(request.ip)
  const overLimit = async (bucket: string, who: string, reply: FastifyReply): Promise<boolean> => {
    const decision = await limiter!.take(bucket)
    reply.headers(rateLimitHeaders(burst, decision))
    if (decision.allowed) return false
    reply.code(429).header('retry-after', String(decision.retryAfterSeconds))
    reply.send({ error: rateLimitMessage(config.rateLimitPerSecond, burst, who, decision) })
    return true
  }
  const refusedKey = (
    request: FastifyRequest,
    reply: FastifyReply,
    error: Error,
    done: (e?: Error) => void,
  ) => {
    const client = clientOf(request)
    overLimit(`unauthorized:${client}`, `client ${client}`, reply).then(
      (refused) => refused || done(error),
      () => done(error),
    )
  }
  const limitQuery = async (request: FastifyRequest, reply: FastifyReply) => {
    const key = keyOf.get(request)
    const client = key ?? clientOf(request)
    if (
      await overLimit(`query:${client}`, key !== undefined ? `API key "${key}"` : `client ${client}`, reply)
    )
      return reply
  }
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
    const key = keyOf.get(request)
    if (key !== undefined) metrics.keyedRequest(key, route, reply.statusCode)
    done()
  })
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}; see /docs` })
  })

  await app.register(swagger, { mode: 'static', specification: { document: openapiDocument as never } })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => openapiDocument)

  // The ingest routes run on bare node:http (ingest-route.ts): the server hands them over before
  // fastify sees them; these fastify routes (app.inject(), the OpenAPI document) hand over the same way.
  const ingest = new IngestHandler({
    config,
    ingestor,
    admission,
    metrics,
    logger,
    apiKeys,
    burst,
    ...(limiter && { limiter }),
    clientIp: (request) =>
      clientBucket(trusted ? trusted.clientIp(request) : (request.socket.remoteAddress ?? 'unknown')),
  })
  fast = ingest
  const handOver = (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    reply.hijack()
    ingest.handle(request.raw, reply.raw, request.routeOptions.url as IngestRoute)
    done()
  }
  const unreachable = async () => {}
  for (const route of ['/events', '/events/batch', '/events/bulk'] as const) {
    app.post(route, { onRequest: handOver }, unreachable)
  }

  app.get('/metrics', { onRequest: [...keyed, ...(limiter ? [limitQuery] : [])] }, async (request) => {
    const q = parseMetricsQuery(request.query as Record<string, unknown>)
    const range = { ...(q.from !== undefined && { from: q.from }), ...(q.to !== undefined && { to: q.to }) }
    if (q.group_by === undefined) {
      const totals = await query.totals(q)
      return { event_name: q.event_name, ...range, ...totals }
    }
    const data = await query.groups({ ...q, group_by: q.group_by })
    return { event_name: q.event_name, ...range, grouped_by: q.group_by, data }
  })
  registerExploreRoutes(app, query, [...keyed, ...(limiter ? [limitQuery] : [])])

  app.get('/health', async () => ({ status: 'healthy' }))
  // Anyone may ask: generic words out, the real reasons to the log with the request id (public-errors.ts).
  const logNotReady = readinessLogger(logger)
  app.get('/ready', async (request, reply) => {
    const state = await deps.readiness()
    if (state.ok) return { status: 'ready', ...publicReadiness(state) }
    logNotReady(request.id, state)
    reply.code(503).header('retry-after', RETRY_AFTER_SECONDS)
    return { status: 'not ready', ...publicReadiness(state) }
  })

  return app
}

/** The configured rate limiter (token buckets here, shared through Redis when REDIS_URL is set). */
export function rateLimiterFor(config: Config, logger: Logger): RateLimiter {
  return new RateLimiter({
    rate: config.rateLimitPerSecond,
    burst: rateLimitBurst(config),
    redisUrl: config.redisUrl || undefined,
    redisPrefix: config.redisKeyPrefix,
    redisTimeoutMs: config.redisTimeoutMs,
    logger: logger.child({ component: 'rate-limit' }),
  })
}

/** The bucket size: `rateLimitBurst`, or twice the rate when it is 0. */
export function rateLimitBurst(config: Config): number {
  return config.rateLimitBurst || Math.max(1, 2 * config.rateLimitPerSecond)
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
