/**
 * The client's errors: a stable code (`SPW_ERR_CLIENT_<WHAT>`) and whether the same call can
 * succeed later, like the server's catalogue. Callers decide by the code, never by the message.
 */

/** One event the server (or the queue) refused, with the reason. */
export interface EventFailure {
  readonly event_id: string
  /** The event as it was queued (without `sent_at`). */
  readonly event: Record<string, unknown>
  readonly error: string
}

/** The catalogue: code → can a later attempt succeed. A test walks every entry. */
export const CLIENT_ERRORS = {
  /** `track()` was given an event the server would refuse; thrown at once. */
  SPW_ERR_CLIENT_INVALID_EVENT: { retryable: false },
  /** An option of the client or of the file queue is wrong; thrown by the constructor. */
  SPW_ERR_CLIENT_INVALID_OPTION: { retryable: false },
  /** `track()` after `close()`. */
  SPW_ERR_CLIENT_CLOSED: { retryable: false },
  /** The server answered 400/401/403/404/409/413/415/422 for these events: they are not retried. */
  SPW_ERR_CLIENT_REJECTED: { retryable: false },
  /** The queue was full (or `close()` gave up): these events were dropped, never sent. */
  SPW_ERR_CLIENT_DROPPED: { retryable: false },
  /** The durable queue could not write or read its file. */
  SPW_ERR_CLIENT_STORAGE: { retryable: true },
  /** `flush()` or `close()` ran out of its `timeoutMs` with events still undelivered. */
  SPW_ERR_CLIENT_TIMEOUT: { retryable: true },
  /** The durable queue's directory is in use by another client. */
  SPW_ERR_CLIENT_LOCKED: { retryable: false },
} as const satisfies Record<string, { readonly retryable: boolean }>

export type ClientErrorCode = keyof typeof CLIENT_ERRORS

export class SpillwayClientError extends Error {
  readonly code: ClientErrorCode
  readonly retryable: boolean
  /** HTTP status of the answer that caused it, when there was one. */
  readonly status: number | undefined
  /** The events concerned (rejected or dropped), with each one's reason. */
  readonly events: readonly EventFailure[]

  constructor(
    code: ClientErrorCode,
    message: string,
    details: { status?: number; events?: readonly EventFailure[]; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'SpillwayClientError'
    this.code = code
    this.retryable = CLIENT_ERRORS[code].retryable
    this.status = details.status
    this.events = details.events ?? []
  }
}

export function clientError(
  code: ClientErrorCode,
  message: string,
  details?: { status?: number; events?: readonly EventFailure[]; cause?: unknown },
): SpillwayClientError {
  return new SpillwayClientError(code, message, details)
}
