/** The rate limiter as configured: shared by the API (one process) and a cluster's primary (the node's buckets). */
import type { Config } from '../config/schema.ts'
import type { Logger } from '../telemetry/logger.ts'
import { RateLimiter } from './rate-limit.ts'

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
