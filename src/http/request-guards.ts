/**
 * API keys and rate limits on fastify's routes (the ingest routes apply the same ones themselves,
 * ingest-route.ts). A key is needed when any is configured (auth.ts); rate limits (rate-limit.ts)
 * take a token per key label, else per client IP, after authentication (an unauthenticated request
 * costs no token). Refused keys (per client: a key-guessing client is slowed) and GET /metrics
 * queries (per key or client) take tokens too, from buckets of their own.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/schema.ts'
import type { Logger } from '../telemetry/logger.ts'
import { ApiKeys, presentedKey } from './auth.ts'
import { clientBucket, rateLimitHeaders, rateLimitMessage, type TokenSource } from './rate-limit.ts'
import { rateLimitBurst, rateLimiterFor } from './rate-limit-config.ts'

type Done = (error?: Error) => void
type Hook = (request: FastifyRequest, reply: FastifyReply, done: Done) => void

export interface RequestGuards {
  readonly apiKeys: ApiKeys
  readonly burst: number
  /** Undefined when rate limits are off. */
  readonly limiter: TokenSource | undefined
  /** The key label a request authenticated with ('missing' or 'unrecognised' when refused). */
  keyOf(request: FastifyRequest): string | undefined
  /** The onRequest hooks of GET /metrics: its key, then its query token. */
  readonly queryHooks: Hook[]
}

export function requestGuards(
  app: FastifyInstance,
  options: { readonly config: Config; readonly logger: Logger; readonly limiter?: TokenSource | undefined },
): RequestGuards {
  const { config, logger } = options
  const apiKeys = new ApiKeys({ inline: config.apiKeys, file: config.apiKeysFile, logger })
  const burst = rateLimitBurst(config)
  const limiter =
    config.rateLimitPerSecond > 0 ? (options.limiter ?? rateLimiterFor(config, logger)) : undefined
  if (limiter) app.addHook('onClose', () => limiter.close())
  const keys = new WeakMap<FastifyRequest, string>()
  const clientOf = (request: FastifyRequest) => clientBucket(request.ip)

  /** Takes a token of `bucket`; answers 429 (and says so) when there is none. */
  const overLimit = async (bucket: string, who: string, reply: FastifyReply): Promise<boolean> => {
    const decision = await limiter!.take(bucket)
    reply.headers(rateLimitHeaders(burst, decision))
    if (decision.allowed) return false
    reply.code(429).header('retry-after', String(decision.retryAfterSeconds))
    reply.send({ error: rateLimitMessage(config.rateLimitPerSecond, burst, who, decision) })
    return true
  }
  const authenticate: Hook = (request, reply, done) => {
    const presented = presentedKey(request.headers)
    try {
      keys.set(request, apiKeys.authenticate(presented))
      done()
    } catch (error) {
      keys.set(request, presented === undefined ? 'missing' : 'unrecognised')
      if (!limiter) return done(error as Error)
      const client = clientOf(request)
      overLimit(`unauthorized:${client}`, `client ${client}`, reply).then(
        (refused) => refused || done(error as Error),
        () => done(error as Error),
      )
    }
  }
  const limitQuery: Hook = (request, reply, done) => {
    const key = keys.get(request)
    const client = key ?? clientOf(request)
    overLimit(`query:${client}`, key !== undefined ? `API key "${key}"` : `client ${client}`, reply).then(
      (refused) => refused || done(),
      (error: Error) => done(error),
    )
  }
  return {
    apiKeys,
    burst,
    limiter,
    keyOf: (request) => keys.get(request),
    queryHooks: [...(apiKeys.enabled ? [authenticate] : []), ...(limiter ? [limitQuery] : [])],
  }
}
