/**
 * What a client may learn about the server's insides. `/ready` and `GET /metrics` answer anyone
 * who can reach the port, so their bodies say what is wrong in generic words ("sink duckdb is not
 * answering", "the query store is unavailable; retry"); the addresses, errnos and driver messages
 * behind them go to the log, with the request id the answer carries in `X-Request-Id`.
 */
import { isSpillwayError } from '../errors.ts'
import type { Logger } from '../telemetry/logger.ts'

export const QUERY_UNAVAILABLE = 'the query store is unavailable; retry'

/** A string in readiness details that is a word of a closed set (`closed`, `half-open`, `up`) is kept. */
const ENUM_WORD = /^[a-z][a-z_-]{0,31}$/
/** Repeated not-ready answers with the same cause are logged at most this often (probes poll). */
const RELOG_MS = 30_000

interface ReadinessLike {
  readonly ok: boolean
  readonly error?: string
  readonly details?: Record<string, unknown>
}

/** The body's replacement for an error the client must not see; undefined when it may see it. */
export function publicMessage(error: unknown): string | undefined {
  return isSpillwayError(error, 'SPW_ERR_QUERY_FAILED') ? QUERY_UNAVAILABLE : undefined
}

/**
 * Readiness as a client sees it: the same shape, numbers, booleans and state words kept, every other
 * string (an error, an address) replaced by a generic sentence; the top-level error names what is
 * not ready. Admission refusals and shutdown keep their own (generic already) words.
 */
export function publicReadiness(state: ReadinessLike): { error?: string; details?: Record<string, unknown> } {
  const details = state.details && (scrub(state.details, []) as Record<string, unknown>)
  if (state.ok) return details ? { details } : {}
  let error: string
  if (state.details?.['admission'] !== undefined || state.error === 'shutting down')
    error = state.error ?? 'not ready'
  else error = failing(state.details).join('; ') || 'not ready; the reason is in the server log'
  return { error, ...(details && { details }) }
}

/** Logs a not-ready answer's real reasons with its request id: a change at once, a repeat now and then. */
export function readinessLogger(logger: Logger): (requestId: string, state: ReadinessLike) => void {
  let last = ''
  let loggedAt = 0
  return (requestId, state) => {
    const cause = state.error ?? ''
    const now = Date.now()
    const entry = { reqId: requestId, error: state.error, details: state.details }
    if (cause !== last || now - loggedAt >= RELOG_MS) {
      last = cause
      loggedAt = now
      logger.warn(entry, 'ReadinessRefused')
    } else logger.debug(entry, 'ReadinessRefused')
  }
}

function failing(details: Record<string, unknown> | undefined): string[] {
  if (!details) return []
  const out: string[] = []
  for (const [key, value] of Object.entries(details)) {
    if (!isRecord(value)) continue
    if (key === 'sinks') {
      for (const [name, sink] of Object.entries(value))
        if (isRecord(sink) && sink['ok'] === false) out.push(sinkSentence(name, sink))
    } else if (value['ok'] === false) out.push(isPublic(value) ? value['error'] : `${key} is not ready`)
  }
  return out
}

function sinkSentence(name: string, sink: Record<string, unknown>): string {
  return sink['breaker'] === 'open'
    ? `sink ${name} is failing; delivery to it is paused (circuit breaker open)`
    : `sink ${name} is not answering`
}

function scrub(value: unknown, path: readonly string[]): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value
  if (typeof value === 'string') {
    return ENUM_WORD.test(value) ? value : 'see the server log'
  }
  if (Array.isArray(value)) return value.map((item, i) => scrub(item, [...path, String(i)]))
  if (isRecord(value)) {
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) out[key] = scrub(item, [...path, key])
    if (path[0] === 'sinks' && path.length === 2 && typeof out['error'] === 'string')
      out['error'] = sinkSentence(path[1], value)
    if (isPublic(value)) out['error'] = value['error']
    return out
  }
  return undefined
}

/**
 * An entry whose producer vouches that its error is fit for anyone (`public: true`): words from a
 * closed set, no address, path or driver message — e.g. the WAL's "WAL writes failing: no space
 * left on device (ENOSPC)", which a load balancer's operator must be able to read.
 */
function isPublic(value: Record<string, unknown>): value is Record<string, unknown> & { error: string } {
  return value['public'] === true && typeof value['error'] === 'string'
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
