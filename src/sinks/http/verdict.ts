/**
 * HTTP answer → delivery verdict, for the `http` sink. The rule is the one of undici's retry
 * handler, Vector's HTTP sink and the OpenTelemetry exporters, with one Spillway twist: when in
 * doubt, retry — a permanent verdict turns events into dead letters, and only a receiver that
 * judged the data may do that (G2, docs/ARCHITECTURE.md "Guarantees").
 * - 2xx → `delivered`.
 * - 408 Request Timeout, 429 Too Many Requests and every 5xx → `retry`: the receiver is slow,
 *   throttling or broken, not refusing the data. A `Retry-After` (delta seconds or an HTTP date)
 *   becomes `afterMs`, which the backoff takes as given (capped at 5 minutes there).
 * - any other 4xx (400, 413, 422, …) → `permanent`, with the start of the response body in the
 *   error: the receiver refused this batch, and the same bytes would be refused again. Delivery
 *   then halves the batch until the refused events stand alone and dead-letters them with this
 *   message, delivering the rest — which also happens to be the right remedy for a 413.
 *   401/403/404 land here too, as in Vector and OpenTelemetry: they are misconfigurations whose
 *   events can be re-sent with `spillway dlq replay` once fixed.
 * - 1xx/3xx (redirects are not followed) → `retry`: an answer that says nothing about the data.
 * - no answer at all (ECONNREFUSED, ECONNRESET, a socket closed before the answer, DNS, TLS, the
 *   request timeout) → `retry`: silence is never a judgement of the data.
 */
import { STATUS_CODES } from 'node:http'
import { noAnswer } from '../../connectors/http/errors.ts'
import { spillwayError } from '../../errors.ts'
import type { Verdict } from '../sink.ts'
import { delivered } from '../sink.ts'

/** How much of a refusing receiver's body goes into the error (and the dead-letter reason). */
export const MAX_REASON_CHARS = 512

export interface HttpAnswer {
  readonly status: number
  /** The `Retry-After` header, if any. */
  readonly retryAfter?: string
  /** The start of the response body (enough for the reason). */
  readonly body?: string
}

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/** `where` names the receiver in messages (never with its credentials). */
export function verdictForAnswer(sink: string, where: string, answer: HttpAnswer, now = Date.now()): Verdict {
  const { status } = answer
  if (status >= 200 && status < 300) return delivered
  const said = describe(answer)
  if (status >= 400 && status < 500 && !isRetryableStatus(status)) {
    return {
      kind: 'permanent',
      error: spillwayError('SPW_ERR_SINK_REJECTED', `${sink}: ${where} refused the batch: ${said}`),
    }
  }
  const afterMs = isRetryableStatus(status) ? parseRetryAfter(answer.retryAfter, now) : undefined
  return {
    kind: 'retry',
    error: spillwayError('SPW_ERR_SINK_UNAVAILABLE', `${sink}: ${where} answered ${said}`),
    ...(afterMs !== undefined && { afterMs }),
  }
}

/** No HTTP answer came: always a retry. */
export function verdictForError(sink: string, where: string, error: unknown): Verdict {
  return { kind: 'retry', error: noAnswer(sink, where, error) }
}

/**
 * `Retry-After` → milliseconds from `now`: delta seconds (`120`) or an HTTP date (`Wed, 21 Oct
 * 2026 07:28:00 GMT`; a date in the past means now, 0). Anything else → undefined (the backoff
 * decides).
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (/^\d+$/.test(text)) {
    const seconds = Number(text)
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined
  }
  // Only a date-looking value: Date.parse would also take "1.5" or "-3".
  if (!/[A-Za-z]/.test(text)) return undefined
  const at = Date.parse(text)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

function describe(answer: HttpAnswer): string {
  const status = `HTTP ${answer.status}${STATUS_CODES[answer.status] ? ` ${STATUS_CODES[answer.status]}` : ''}`
  const body = answer.body?.trim()
  return body ? `${status}: ${truncate(body, MAX_REASON_CHARS)}` : status
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more chars)`
}
