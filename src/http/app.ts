/**
 * The HTTP API (DESIGN §2). Routes are thin: admission, body, then the ingestor or the query
 * backend. Every answer is JSON, every error is `{"error": "<one sentence>"}` with the status of
 * its SpillwayError.
 */
import { randomUUID } from 'node:crypto'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify'
import type { Config } from '../config/schema.ts'
import { isSpillwayError, spillwayError } from '../errors.ts'
import type { IntakeContext } from '../intake/types.ts'
import type { QueryBackend } from '../query/types.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { ServerMetrics } from '../telemetry/metrics.ts'
import { type Admission, contentLengthOf, decodedSize, isRefusal, type Reservation } from './admission.ts'
import { ApiKeys, presentedKey } from './auth.ts'
import { parseJsonBody, type RawBody, registerBodyParsers } from './body.ts'
import type { Ingestor } from './ingest.ts'
import { parseMetricsQuery } from './metrics-query.ts'
import { openapiDocument } from './openapi.ts'
import { RateLimiter, type TokenSource } from './rate-limit.ts'

export interface Readiness {
  readonly ok: boolean
  readonly error?: string
  readonly details?: Record<string, unknown>
}

export interface AppDeps {
  readonly config: Config
  readonly ingestor: Ingestor
  readonly query: QueryBackend
  readonly readiness: () => Promise<Readiness>
  readonly logger: Logger
  /** The bounds of G4, checked before a body is read (admission.ts). */
  readonly admission: Admission
  readonly metrics: ServerMetrics
  /**
   * Where rate-limit tokens come from when they are not this process's to keep (a cluster worker
   * asks its primary, so N workers share one bucket per key); default: a RateLimiter built here.
   */
  readonly limiter?: TokenSource
}

const RETRY_AFTER_SECONDS = '1'
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/
const INGEST_ROUTES = new Set(['/events', '/events/batch', '/events/bulk'])
/** A refused body larger than this (or of unknown length) closes the connection instead of being read and discarded. */
const DISCARD_BODY_BYTES = 64 * 1024

/** A request's admission reservation; `handling` once its handler runs (the handler releases it then). */
interface Held {
  readonly reservation: Reservation
  handling: boolean
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, ingestor, query, logger, admission, metrics } = deps
  const app = Fastify({
    logger: false,
    bodyLimit: config.maxBatchBytes,
    requestTimeout: config.requestTimeoutMs,
    // Slow clients (slowloris): node answers 408 once a request or its headers take too long. It
    // checks on a timer, 30 s by default, so the timer follows the smaller timeout.
    http: {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(config.headersTimeoutMs, config.requestTimeoutMs),
      connectionsCheckingInterval: Math.max(
        50,
        Math.min(30_000, Math.floor(Math.min(config.headersTimeoutMs, config.requestTimeoutMs) / 4)),
      ),
    },
    keepAliveTimeout: 75_000,
    connectionTimeout: 60_000,
    // A client's (or a proxy's) X-Request-Id is kept when it is sane, so one id follows a request
    // through every hop's logs; otherwise a new one. Either way it is echoed in the answer.
    genReqId: (request) => {
      const given = request.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    // While closing, fastify's own 503 has no Retry-After; with this off, requests still get
    // `Connection: close`, and the ingest routes refuse in `admit` (ingestor closed) with a 503
    // that has one.
    return503OnClosing: false,
  })
  registerBodyParsers(app)
  // API keys (auth.ts): the ingest routes and GET /metrics need one when any is configured.
  const apiKeys = new ApiKeys({ inline: config.apiKeys, file: config.apiKeysFile, logger })
  const keyOf = new WeakMap<FastifyRequest, string>()
  const authenticate = (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
    const presented = presentedKey(request.headers)
    try {
      keyOf.set(request, apiKeys.authenticate(presented))
      done()
    } catch (error) {
      keyOf.set(request, presented === undefined ? 'missing' : 'unrecognised')
      done(error as Error)
    }
  }
  const keyed = apiKeys.enabled ? [authenticate] : []
  // Rate limits (rate-limit.ts): per key label, else per client IP; after authentication (an
  // unauthenticated request costs no token), before admission.
  const burst = rateLimitBurst(config)
  const limiter = config.rateLimitPerSecond > 0 ? (deps.limiter ?? rateLimiterFor(config, logger)) : undefined
  const limit = async (request: FastifyRequest, reply: FastifyReply) => {
    const client = keyOf.get(request) ?? request.ip
    const decision = await limiter!.take(client)
    reply
      .header('ratelimit-limit', String(burst))
      .header('ratelimit-remaining', String(decision.remaining))
      .header('ratelimit-reset', String(decision.resetSeconds))
    if (decision.allowed) return
    metrics.received(1)
    metrics.rejected('rate_limited', 1)
    reply.code(429).header('retry-after', String(decision.retryAfterSeconds))
    reply.send({
      error: `rate limit of ${config.rateLimitPerSecond} requests/s (burst ${burst}) exceeded for ${keyOf.has(request) ? `API key "${client}"` : `client ${client}`}; retry after ${decision.retryAfterSeconds} s`,
    })
    return reply
  }
  if (limiter) app.addHook('onClose', () => limiter.close())
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (isIngest(request)) metrics.requestFailed(error)
    return sendError(error, request, reply, logger)
  })
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched'
    metrics.request(route, request.method, reply.statusCode, reply.elapsedTime, isIngest(request))
    const key = keyOf.get(request)
    if (key !== undefined) metrics.keyedRequest(key, route, reply.statusCode)
    held.get(request)?.reservation.release()
    done()
  })
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}; see /docs` })
  })

  await app.register(swagger, { mode: 'static', specification: { document: openapiDocument as never } })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true } }, async () => openapiDocument)

  const wantsDurable = (request: FastifyRequest) => {
    const wait = (request.query as Record<string, unknown>)['wait']
    if (wait === undefined || wait === 'true' || wait === '1') return config.ack === 'durable'
    if (wait === 'false' || wait === '0') return false
    throw spillwayError(
      'SPW_ERR_INTAKE_INVALID',
      `wait must be true or false, got "${String(wait).slice(0, 40)}"`,
    )
  }
  // `?dead_letter=false`: invalid events answered, not kept (a client that keeps them, e.g. dlq replay).
  const keepsRejected = (request: FastifyRequest) => {
    const keep = (request.query as Record<string, unknown>)['dead_letter']
    if (keep === undefined || keep === 'true' || keep === '1') return true
    if (keep === 'false' || keep === '0') return false
    throw spillwayError(
      'SPW_ERR_INTAKE_INVALID',
      `dead_letter must be true or false, got "${String(keep).slice(0, 40)}"`,
    )
  }
  const context = (request: FastifyRequest): IntakeContext => {
    const key = request.headers['idempotency-key']
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 128)) {
      throw spillwayError(
        'SPW_ERR_INTAKE_INVALID',
        'Idempotency-Key must be one non-empty value of at most 128 characters',
      )
    }
    return key === undefined ? { receivedAt: Date.now() } : { receivedAt: Date.now(), idempotencyKey: key }
  }
  // Admission runs before the body is read, so a refused request costs almost nothing: no body
  // parsing, no allocation beyond the answer. The reservation it takes is released once the
  // request's append resolved or failed (the handler), or when the request ends without reaching
  // its handler (an error answer, a client that went away).
  const held = new WeakMap<FastifyRequest, Held>()
  const admit = (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => {
    try {
      ingestor.admit()
    } catch (error) {
      done(error as Error)
      return
    }
    const contentLength = contentLengthOf(request.headers['content-length'])
    const encoding = request.headers['content-encoding']
    const verdict = admission.admit({
      contentLength,
      encoded: encoding !== undefined && !/^\s*(identity)?\s*$/i.test(encoding),
      bodyLimit: request.routeOptions.bodyLimit ?? config.maxBatchBytes,
    })
    if (isRefusal(verdict)) {
      metrics.received(1)
      metrics.rejected('overloaded', 1)
      reply.code(503).header('retry-after', String(verdict.retryAfterSeconds))
      if (contentLength === undefined || contentLength > DISCARD_BODY_BYTES)
        reply.header('connection', 'close')
      reply.send({ error: verdict.message, bound: verdict.bound, value: verdict.value, limit: verdict.limit })
      return
    }
    held.set(request, { reservation: verdict, handling: false })
    done()
  }
  const aborted = (request: FastifyRequest, done: () => void) => {
    const entry = held.get(request)
    if (entry && !entry.handling) entry.reservation.release()
    done()
  }
  /**
   * Runs the handler with the body decoded: the reservation takes the body's real size instead of
   * the guess made before it was read, and is released once the append resolved or failed.
   */
  const releasing =
    <T>(handler: (request: FastifyRequest, reply: FastifyReply) => Promise<T>) =>
    async (request: FastifyRequest, reply: FastifyReply): Promise<T> => {
      const entry = held.get(request)
      if (entry) {
        entry.handling = true
        const bytes = decodedSize(request.body)
        if (bytes !== undefined) entry.reservation.resize(bytes)
      }
      try {
        return await handler(request, reply)
      } finally {
        entry?.reservation.release()
      }
    }
  // Authentication first: a request without a valid key never takes an admission reservation.
  const ingestHooks = { onRequest: [...keyed, ...(limiter ? [limit] : []), admit], onRequestAbort: aborted }

  app.post(
    '/events',
    { bodyLimit: config.maxBodyBytes, ...ingestHooks },
    releasing(async (request, reply) => {
      const raw = requireBody(request.body)
      const durable = wantsDurable(request)
      const outcome = await ingestor.acceptEvent(parseJsonBody(raw), context(request), durable)
      reply.code(202)
      return outcome.duplicate
        ? { status: 'accepted', event_id: outcome.event_id, duplicate: true }
        : { status: 'accepted', event_id: outcome.event_id }
    }),
  )

  const batch = async (request: FastifyRequest, reply: FastifyReply) => {
    const raw = requireBody(request.body)
    const durable = wantsDurable(request)
    const outcome = await ingestor.acceptBatch(
      raw.bytes,
      raw.ndjson,
      context(request),
      durable,
      keepsRejected(request),
    )
    if (outcome.accepted === 0 && outcome.duplicates === 0) {
      reply.code(400)
      return { error: `all ${outcome.rejected.length} events were rejected`, ...outcome }
    }
    reply.code(202)
    return outcome
  }
  app.post('/events/batch', { bodyLimit: config.maxBatchBytes, ...ingestHooks }, releasing(batch))
  app.post('/events/bulk', { bodyLimit: config.maxBatchBytes, ...ingestHooks }, releasing(batch))

  app.get('/metrics', { onRequest: keyed }, async (request) => {
    const q = parseMetricsQuery(request.query as Record<string, unknown>)
    const range = { ...(q.from !== undefined && { from: q.from }), ...(q.to !== undefined && { to: q.to }) }
    if (q.group_by === undefined) {
      const totals = await query.totals(q)
      return { event_name: q.event_name, ...range, ...totals }
    }
    const data = await query.groups({ ...q, group_by: q.group_by })
    return { event_name: q.event_name, ...range, grouped_by: q.group_by, data }
  })

  app.get('/health', async () => ({ status: 'healthy' }))
  app.get('/ready', async (_request, reply) => {
    const state = await deps.readiness()
    if (state.ok) return { status: 'ready', ...(state.details && { details: state.details }) }
    reply.code(503).header('retry-after', RETRY_AFTER_SECONDS)
    return {
      status: 'not ready',
      error: state.error ?? 'not ready',
      ...(state.details && { details: state.details }),
    }
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
  return request.method === 'POST' && INGEST_ROUTES.has(request.routeOptions.url ?? '')
}

function requireBody(body: unknown): RawBody {
  if (body === undefined || body === null) {
    throw spillwayError(
      'SPW_ERR_INTAKE_BAD_JSON',
      'body is empty; send JSON with Content-Type: application/json',
    )
  }
  return body as RawBody
}

function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply, logger: Logger) {
  if (isSpillwayError(error)) {
    if (error.statusCode === 503) {
      const seconds = (error as { retryAfterSeconds?: number }).retryAfterSeconds
      reply.header('retry-after', seconds === undefined ? RETRY_AFTER_SECONDS : String(seconds))
    }
    if (error.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="spillway"')
    // A 503 is a refusal the client retries (overload, full disk, shutdown); its cause is logged
    // once where it happens (WalGroupFailed, …), not once per refused request.
    if (error.statusCode === 503)
      logger.debug({ err: error, reqId: request.id, url: request.url }, 'request refused')
    else if (error.statusCode >= 500)
      logger.error({ err: error, reqId: request.id, url: request.url }, 'request failed')
    return reply.code(error.statusCode).send({ error: error.message })
  }
  // fastify's own errors: map the ones a client can cause to clear messages.
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return reply.code(413).send({ error: `body is larger than ${request.routeOptions.bodyLimit} bytes` })
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return reply
        .code(415)
        .send({ error: 'Content-Type is missing or not supported; send application/json' })
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return reply.code(400).send({ error: 'Content-Length does not match the body' })
  }
  const status = error.statusCode ?? 500
  if (status < 500) return reply.code(status).send({ error: error.message })
  logger.error({ err: error, reqId: request.id, url: request.url }, 'request failed')
  return reply.code(500).send({ error: 'internal error; the event was not accepted, retry' })
}
