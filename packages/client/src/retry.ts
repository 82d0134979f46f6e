/**
 * When to try again: capped exponential backoff with jitter, unless the server said when
 * (`Retry-After`, or `RateLimit-Remaining: 0` with `RateLimit-Reset`), in which case its word
 * is a floor — waking early would only earn another 429/503.
 */

export interface BackoffOptions {
  /** Delay before the first retry (the jitter picks between half of it and all of it). */
  readonly minMs: number
  /** Cap of the doubling. */
  readonly maxMs: number
  /** Cap of a server-given delay, so a wrong header cannot park the client for an hour. */
  readonly maxServerDelayMs: number
}

/**
 * Delay before retry `attempt` (1 = the first retry): "equal jitter" — half the capped doubling
 * fixed, half random — so clients that failed together spread out but none retries at once.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(options.maxMs, options.minMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const date = Date.parse(text)
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined
}

/**
 * How long to hold the next request because the rate-limit window is spent: `RateLimit-Remaining`
 * and `RateLimit-Reset` (seconds until the window resets), as separate headers or as the IETF
 * draft's one `RateLimit: limit=…, remaining=…, reset=…` header. 0 when there is budget left.
 */
export function rateLimitWaitMs(headers: { get(name: string): string | null }): number {
  let remaining = numberOf(headers.get('ratelimit-remaining'))
  let reset = numberOf(headers.get('ratelimit-reset'))
  const combined = headers.get('ratelimit')
  if (combined !== null) {
    remaining ??= numberOf(/(?:^|[;,\s])r(?:emaining)?=(\d+)/i.exec(combined)?.[1] ?? null)
    reset ??= numberOf(/(?:^|[;,\s])(?:t|reset)=(\d+)/i.exec(combined)?.[1] ?? null)
  }
  if (remaining === undefined || remaining > 0 || reset === undefined) return 0
  return reset * 1000
}

function numberOf(value: string | null): number | undefined {
  if (value === null || !/^\s*\d+\s*$/.test(value)) return undefined
  return Number(value)
}

/** Statuses worth another attempt: the server may accept the same request later. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500
}
