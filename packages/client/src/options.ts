/**
 * The client's options, their defaults and their checks. A wrong option fails the constructor,
 * naming the option and what is wrong, rather than failing every request later. Defaults differ
 * in browsers: smaller batches, so a request fits the 64 KiB a page may still send as it closes.
 */

import type { EventFailure } from './errors.ts'
import { clientError, type SpillwayClientError } from './errors.ts'
import type { EventStore } from './store.ts'
import { DEFAULT_LIMITS, type EventLimits } from './validate.ts'

export type Overflow = 'drop-oldest' | 'drop-newest' | 'block'
export type UnloadTransport = 'auto' | 'beacon' | 'fetch' | false

export interface RetryInfo {
  /** 1 for the first retry of a request. */
  readonly attempt: number
  /** HTTP status of the failed attempt; undefined for a network error or timeout. */
  readonly status: number | undefined
  readonly error: string
  readonly delayMs: number
  readonly events: number
}

export interface BatchResult {
  readonly status: number
  readonly events: number
  /** Stored now. */
  readonly accepted: number
  /** Already stored earlier (a retry of a request whose answer was lost, or a replay). */
  readonly duplicates: number
  readonly rejected: readonly EventFailure[]
}

export interface ClientOptions {
  /** Base URL of the Spillway API, e.g. `http://127.0.0.1:8080` (relative URLs work in browsers). */
  url: string
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string
  /** Most events in one request (the server's default limit is 10,000). */
  batchEvents?: number
  /** Most NDJSON bytes in one request, before gzip (the server's default limit is 16 MiB). */
  batchBytes?: number
  /** Longest an event waits for its batch to fill before it is sent anyway. */
  flushIntervalMs?: number
  /** Requests in flight at once (one per connection). */
  concurrency?: number
  /** Gzip request bodies larger than this; `Infinity` never. */
  gzipAboveBytes?: number
  /** A request not answered within this counts as a network error (and is retried). */
  requestTimeoutMs?: number
  retry?: { minMs?: number; maxMs?: number; maxServerDelayMs?: number }
  /** Bound of the queue: events not yet delivered, in flight included. */
  maxQueueEvents?: number
  /** Bound of the queue in bytes of JSON. */
  maxQueueBytes?: number
  /** What a full queue does with a new event. */
  overflow?: Overflow
  /** The server's per-event limits, if it runs with other than the defaults. */
  limits?: Partial<EventLimits>
  /** A durable queue (`FileQueue` from `@spillway/client/node`); default: memory only. */
  store?: EventStore
  /** Browsers: how queued events leave when the page is hidden or closed. */
  unload?: UnloadTransport
  /** Browsers: send requests with `keepalive` (≤ 64 KiB), so one in flight survives the page. */
  keepalive?: boolean
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch
  /** Events refused by the server or dropped by the queue, with reasons; never thrown. */
  onError?: (error: SpillwayClientError) => void
  onRetry?: (info: RetryInfo) => void
  /** Every answered request. */
  onResult?: (result: BatchResult) => void
}

export interface ResolvedOptions {
  readonly endpoint: string
  readonly apiKey: string | undefined
  readonly batchEvents: number
  readonly batchBytes: number
  readonly flushIntervalMs: number
  readonly concurrency: number
  readonly gzipAboveBytes: number
  readonly requestTimeoutMs: number
  readonly retry: { readonly minMs: number; readonly maxMs: number; readonly maxServerDelayMs: number }
  readonly maxQueueEvents: number
  readonly maxQueueBytes: number
  readonly overflow: Overflow
  readonly limits: EventLimits
  readonly unload: UnloadTransport
  readonly keepalive: boolean
  readonly fetch: typeof fetch
}

export function isBrowser(): boolean {
  const g = globalThis as { document?: unknown; window?: unknown }
  return typeof g.document === 'object' && g.document !== null && typeof g.window === 'object'
}

export function resolveOptions(options: ClientOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw clientError('SPW_ERR_CLIENT_INVALID_OPTION', 'options must be an object with at least `url`')
  }
  const browser = isBrowser()
  const retry = options.retry ?? {}
  const resolved: ResolvedOptions = {
    endpoint: endpointOf(options.url),
    apiKey: apiKeyOf(options.apiKey),
    batchEvents: int('batchEvents', options.batchEvents, browser ? 100 : 500, 1),
    batchBytes: int('batchBytes', options.batchBytes, browser ? 32 * 1024 : 512 * 1024, 1024),
    flushIntervalMs: int('flushIntervalMs', options.flushIntervalMs, browser ? 2000 : 1000, 0),
    concurrency: int('concurrency', options.concurrency, 1, 1),
    gzipAboveBytes: int('gzipAboveBytes', options.gzipAboveBytes, 16 * 1024, 0, true),
    requestTimeoutMs: int('requestTimeoutMs', options.requestTimeoutMs, 30_000, 1),
    retry: {
      minMs: int('retry.minMs', retry.minMs, 250, 1),
      maxMs: int('retry.maxMs', retry.maxMs, 30_000, 1),
      maxServerDelayMs: int('retry.maxServerDelayMs', retry.maxServerDelayMs, 300_000, 0),
    },
    maxQueueEvents: int('maxQueueEvents', options.maxQueueEvents, 10_000, 1),
    maxQueueBytes: int(
      'maxQueueBytes',
      options.maxQueueBytes,
      browser ? 4 * 1024 * 1024 : 16 * 1024 * 1024,
      1024,
    ),
    overflow: oneOf('overflow', options.overflow, 'drop-oldest', [
      'drop-oldest',
      'drop-newest',
      'block',
    ] as const),
    limits: limitsOf(options.limits),
    unload: oneOf('unload', options.unload, 'auto', ['auto', 'beacon', 'fetch', false] as const),
    keepalive: bool('keepalive', options.keepalive, browser),
    fetch: fetchOf(options.fetch),
  }
  if (resolved.retry.maxMs < resolved.retry.minMs) {
    throw invalid(
      `retry.maxMs must be at least retry.minMs (${resolved.retry.minMs}), got ${resolved.retry.maxMs}`,
    )
  }
  if (resolved.unload === 'beacon' && resolved.apiKey !== undefined) {
    throw invalid(
      "unload must not be 'beacon' with an apiKey: sendBeacon cannot send an Authorization header; use 'fetch' or 'auto'",
    )
  }
  for (const name of ['onError', 'onRetry', 'onResult'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw invalid(`${name} must be a function, got ${typeof options[name]}`)
    }
  }
  return resolved
}

function invalid(message: string) {
  return clientError('SPW_ERR_CLIENT_INVALID_OPTION', message)
}

function endpointOf(url: unknown): string {
  if (typeof url !== 'string' || url.trim() === '') {
    throw invalid(
      `url must be the base URL of the Spillway API, e.g. "http://127.0.0.1:8080", got ${show(url)}`,
    )
  }
  const base = (globalThis as { location?: { href?: string } }).location?.href
  let parsed: URL
  try {
    parsed = new URL(url, base)
  } catch {
    throw invalid(`url must be an absolute http(s) URL${base ? ' or a path' : ''}, got ${show(url)}`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalid(`url must use http or https, got ${show(url)}`)
  }
  if (parsed.search !== '' || parsed.hash !== '')
    throw invalid(`url must not have a query or fragment, got ${show(url)}`)
  return parsed.href.replace(/\/+$/, '') + '/events/batch?results=full'
}

function apiKeyOf(key: unknown): string | undefined {
  if (key === undefined || key === null || key === '') return undefined
  if (typeof key !== 'string' || !/^[\x21-\x7e]+$/.test(key)) {
    throw invalid('apiKey must be a string of printable ASCII without spaces')
  }
  return key
}

function int(name: string, value: unknown, fallback: number, min: number, infinite = false): number {
  if (value === undefined) return fallback
  if (infinite && value === Number.POSITIVE_INFINITY) return value
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalid(`${name} must be an integer ≥ ${min}${infinite ? ' or Infinity' : ''}, got ${show(value)}`)
  }
  return value
}

function bool(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalid(`${name} must be true or false, got ${show(value)}`)
  return value
}

function oneOf<T extends string | false>(name: string, value: unknown, fallback: T, values: readonly T[]): T {
  if (value === undefined) return fallback
  if (!values.includes(value as T)) {
    throw invalid(
      `${name} must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}, got ${show(value)}`,
    )
  }
  return value as T
}

function limitsOf(limits: Partial<EventLimits> | undefined): EventLimits {
  if (limits === undefined) return DEFAULT_LIMITS
  const out: Record<string, number> = { ...DEFAULT_LIMITS }
  for (const [name, value] of Object.entries(limits)) {
    if (!(name in DEFAULT_LIMITS)) {
      throw invalid(`limits.${name} is not a limit; the limits are ${Object.keys(DEFAULT_LIMITS).join(', ')}`)
    }
    out[name] = int(`limits.${name}`, value, DEFAULT_LIMITS[name as keyof EventLimits], 0)
  }
  return Object.freeze(out) as unknown as EventLimits
}

function fetchOf(value: unknown): typeof fetch {
  if (value !== undefined) {
    if (typeof value !== 'function') throw invalid(`fetch must be a function, got ${show(value)}`)
    return value as typeof fetch
  }
  if (typeof globalThis.fetch !== 'function') {
    throw invalid(
      'fetch is not available here (Node ≥ 18 and every current browser have it); pass options.fetch',
    )
  }
  // Bound, so a browser's fetch is not called with the client as `this` (an "Illegal invocation").
  return globalThis.fetch.bind(globalThis)
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 39) + '…' : value)
  if (typeof value === 'function') return 'a function'
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

export type { EventFailure }
