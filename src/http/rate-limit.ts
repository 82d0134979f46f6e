/**
 * Rate limits: a token bucket per API key label (per client IP when keys are off) on the ingest
 * routes. A bucket holds at most `burst` tokens and refills at `rate` per second; each request
 * takes one. An empty bucket answers 429 with `Retry-After` (whole seconds until a token is
 * back); every answer on a limited route carries `RateLimit-Limit`, `RateLimit-Remaining` and
 * `RateLimit-Reset` (seconds until the bucket is full again), as the IETF RateLimit header fields
 * draft names them.
 *
 * With `REDIS_URL` the buckets are shared by every node: one Lua script per request reads, refills
 * and takes from the bucket atomically, on Redis's clock (`TIME`), so nodes with skewed clocks
 * agree. If Redis does not answer within `redisTimeoutMs` the node decides alone with its local
 * bucket — a Redis outage must not turn into refused traffic — logs it once each way, and goes
 * back to the shared buckets when Redis answers again.
 *
 * A Redis known to be down is not asked again on the request path: a hung Redis would otherwise
 * cost every request a whole `redisTimeoutMs`. Requests use the local bucket while one background
 * probe at a time (PING) asks Redis again after a capped exponential backoff with jitter.
 *
 * Buckets are per API key label, else per client: an IPv4 address, or an IPv6 /64 (one host
 * usually holds a whole /64, so per-address buckets would not limit it; see `clientBucket`).
 *
 * Local buckets are kept for at most MAX_LOCAL_BUCKETS clients (the least recently seen go first),
 * so a flood of client IPs cannot grow memory without bound.
 */
import { Redis } from 'ioredis'
import { Backoff } from '../shared/backoff.ts'
import type { Logger } from '../telemetry/logger.ts'

export interface RateDecision {
  readonly allowed: boolean
  /** Tokens left after this request. */
  readonly remaining: number
  /** Seconds until the bucket is full again. */
  readonly resetSeconds: number
  /** When refused: seconds until one token is back (≥ 1). */
  readonly retryAfterSeconds: number
}

export interface RateLimiterOptions {
  /** Tokens added per second. */
  readonly rate: number
  /** Bucket size: the most requests a client may send at once. */
  readonly burst: number
  readonly redisUrl?: string
  readonly redisPrefix?: string
  readonly redisTimeoutMs?: number
  /** First wait before probing a Redis found down (default 250 ms); doubles up to `probeMaxMs`. */
  readonly probeMinMs?: number
  /** Longest wait between probes of a Redis found down (default 5 s). */
  readonly probeMaxMs?: number
  readonly logger?: Logger
}

export const MAX_LOCAL_BUCKETS = 100_000

/**
 * The bucket of a client address: an IPv4 address as it is, an IPv6 address as its /64
 * (`2001:db8:1:2::/64`), an IPv4-mapped IPv6 address as the IPv4 one. Anything else (a proxy's
 * odd X-Forwarded-For) as it is.
 */
export function clientBucket(ip: string): string {
  if (!ip.includes(':')) return ip
  let address = ip.toLowerCase()
  const zone = address.indexOf('%')
  if (zone >= 0) address = address.slice(0, zone)
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7)
  const halves = address.split('::')
  if (halves.length > 2) return ip
  const head = halves[0] === '' ? [] : halves[0].split(':')
  let groups = head
  if (halves.length === 2) {
    const tail = halves[1] === '' ? [] : halves[1].split(':')
    // A trailing dotted IPv4 part stands for two groups.
    const tailGroups = tail.length + (tail.at(-1)?.includes('.') ? 1 : 0)
    groups = [...head, ...new Array(Math.max(0, 8 - head.length - tailGroups)).fill('0'), ...tail]
  }
  const prefix = groups.slice(0, 4)
  if (prefix.length < 4 || prefix.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return ip
  return `${prefix.map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`
}

/** A token bucket's state after taking (or failing to take) one token at `nowMs`. */
export function takeToken(
  bucket: { tokens: number; atMs: number } | undefined,
  nowMs: number,
  rate: number,
  burst: number,
): { state: { tokens: number; atMs: number }; decision: RateDecision } {
  const elapsed = bucket ? Math.max(0, nowMs - bucket.atMs) / 1000 : 0
  let tokens = bucket ? Math.min(burst, bucket.tokens + elapsed * rate) : burst
  const allowed = tokens >= 1
  if (allowed) tokens -= 1
  return { state: { tokens, atMs: nowMs }, decision: decide(allowed, tokens, rate, burst) }
}

function decide(allowed: boolean, tokens: number, rate: number, burst: number): RateDecision {
  return {
    allowed,
    remaining: Math.floor(tokens),
    resetSeconds: Math.ceil((burst - tokens) / rate),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - tokens) / rate)),
  }
}

/** The `RateLimit-*` header fields of a decision (IETF draft names; Limit is the bucket size). */
export function rateLimitHeaders(burst: number, decision: RateDecision): Record<string, string> {
  return {
    'ratelimit-limit': String(burst),
    'ratelimit-remaining': String(decision.remaining),
    'ratelimit-reset': String(decision.resetSeconds),
  }
}

/** The 429 answer: `who` is `API key "ios"` or `client 203.0.113.7`. */
export function rateLimitMessage(rate: number, burst: number, who: string, decision: RateDecision): string {
  return `rate limit of ${rate} requests/s (burst ${burst}) exceeded for ${who}; retry after ${decision.retryAfterSeconds} s`
}

/** KEYS[1]: the bucket; ARGV: rate, burst, ttl seconds. Answers {allowed, tokens × 1000}. */
const TAKE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = burst
if b[1] then
  local elapsed = math.max(0, now - tonumber(b[2])) / 1000
  tokens = math.min(burst, tonumber(b[1]) + elapsed * rate)
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {allowed, math.floor(tokens * 1000)}`

interface Scripts {
  spillwayTakeToken(key: string, rate: number, burst: number, ttl: number): Promise<[number, number]>
}

/** What the API needs of a rate limiter (RateLimiter, or a cluster worker's proxy to its primary). */
export interface TokenSource {
  take(client: string): Promise<RateDecision>
  close(): Promise<void>
}

export class RateLimiter implements TokenSource {
  readonly #rate: number
  readonly #burst: number
  readonly #local = new Map<string, { tokens: number; atMs: number }>()
  readonly #redis: (Redis & Scripts) | undefined
  readonly #prefix: string
  readonly #ttl: number
  readonly #logger: Logger | undefined
  /** Pace of the probes while Redis is down: capped doubling, ±20 % so nodes do not come back in lockstep. */
  readonly #probeBackoff: Backoff
  #redisDown = false
  #probeTimer: NodeJS.Timeout | undefined
  #closed = false

  constructor(options: RateLimiterOptions) {
    this.#rate = options.rate
    this.#burst = Math.max(1, options.burst)
    this.#prefix = `${options.redisPrefix ?? 'spillway:'}ratelimit:`
    // A bucket idle this long is full again: Redis may forget it.
    this.#ttl = Math.max(1, Math.ceil(this.#burst / this.#rate) + 1)
    this.#logger = options.logger
    const probeMinMs = options.probeMinMs ?? 250
    this.#probeBackoff = new Backoff({
      initialMs: probeMinMs,
      maxMs: Math.max(probeMinMs, options.probeMaxMs ?? 5000),
      jitter: 0.2,
    })
    if (options.redisUrl) {
      const timeout = options.redisTimeoutMs ?? 200
      const client = new Redis(options.redisUrl, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: timeout,
        connectTimeout: Math.max(timeout, 1000),
        retryStrategy: (attempt) => Math.min(100 * attempt, 2000),
      })
      client.defineCommand('spillwayTakeToken', { numberOfKeys: 1, lua: TAKE })
      client.on('error', () => {})
      this.#redis = client as Redis & Scripts
    }
  }

  get shared(): boolean {
    return this.#redis !== undefined
  }

  /** Whether Redis is known to be down (requests decide locally until a probe finds it back). */
  get redisDown(): boolean {
    return this.#redisDown
  }

  /** Takes one token from `client`'s bucket. */
  async take(client: string): Promise<RateDecision> {
    if (this.#redis && !this.#redisDown) {
      try {
        const [allowed, milli] = await this.#redis.spillwayTakeToken(
          this.#prefix + client,
          this.#rate,
          this.#burst,
          this.#ttl,
        )
        return decide(allowed === 1, milli / 1000, this.#rate, this.#burst)
      } catch (error) {
        this.#markDown(error)
      }
    }
    return this.#takeLocal(client, Date.now())
  }

  #markDown(error: unknown): void {
    // Requests in flight when Redis went away all land here: one log line, one probe loop.
    if (this.#redisDown || this.#closed) return
    this.#redisDown = true
    this.#probeBackoff.reset()
    const delay = this.#probeBackoff.next()
    this.#logger?.warn({ err: error, probeInMs: delay }, 'RateLimitSharedUnavailable')
    this.#scheduleProbe(delay)
  }

  #scheduleProbe(delay: number): void {
    this.#probeTimer = setTimeout(() => void this.#probe(), delay)
    this.#probeTimer.unref()
  }

  async #probe(): Promise<void> {
    this.#probeTimer = undefined
    if (this.#closed) return
    try {
      await this.#redis!.ping()
      this.#redisDown = false
      this.#logger?.info('RateLimitSharedRecovered')
    } catch {
      if (this.#closed) return
      this.#scheduleProbe(this.#probeBackoff.next())
    }
  }

  #takeLocal(client: string, nowMs: number): RateDecision {
    const before = this.#local.get(client)
    const { state, decision } = takeToken(before, nowMs, this.#rate, this.#burst)
    // Re-inserted last: the Map's order is the least recently seen first.
    if (before) this.#local.delete(client)
    else if (this.#local.size >= MAX_LOCAL_BUCKETS) this.#local.delete(this.#local.keys().next().value!)
    this.#local.set(client, state)
    return decision
  }

  get localBuckets(): number {
    return this.#local.size
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#probeTimer)
    this.#redis?.disconnect()
  }
}
