/**
 * One error base for the whole engine. Every error carries a stable code (`SPW_ERR_<AREA>_<WHAT>`),
 * the HTTP status it maps to, and whether retrying the same operation can succeed. Callers decide by
 * the flags, never by parsing the message.
 */
export class SpillwayError extends Error {
  readonly code: string
  readonly statusCode: number
  readonly retryable: boolean

  constructor(code: string, message: string, statusCode: number, retryable: boolean, options?: ErrorOptions) {
    super(message, options)
    this.name = 'SpillwayError'
    this.code = code
    this.statusCode = statusCode
    this.retryable = retryable
  }
}

interface ErrorSpec {
  readonly status: number
  readonly retryable: boolean
}

/** The catalogue: code → status and retryability. A test walks every entry. */
export const ERRORS = {
  SPW_ERR_CONFIG_INVALID: { status: 500, retryable: false },
  SPW_ERR_INTAKE_INVALID: { status: 400, retryable: false },
  SPW_ERR_INTAKE_BAD_JSON: { status: 400, retryable: false },
  SPW_ERR_INTAKE_BAD_ENCODING: { status: 400, retryable: false },
  SPW_ERR_INTAKE_TOO_LARGE: { status: 413, retryable: false },
  SPW_ERR_INTAKE_UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false },
  SPW_ERR_INTAKE_UNSUPPORTED_ENCODING: { status: 415, retryable: false },
  SPW_ERR_INTAKE_EMPTY_BATCH: { status: 400, retryable: false },
  SPW_ERR_INTAKE_TOO_MANY_EVENTS: { status: 413, retryable: false },
  SPW_ERR_INTAKE_CONFLICT: { status: 409, retryable: false },
  SPW_ERR_AUTH_MISSING: { status: 401, retryable: false },
  SPW_ERR_AUTH_INVALID: { status: 401, retryable: false },
  SPW_ERR_QUERY_INVALID: { status: 400, retryable: false },
  SPW_ERR_QUERY_FAILED: { status: 503, retryable: true },
  /** The configuration names no store that can answer queries (said as it is: nothing internal). */
  SPW_ERR_QUERY_NO_STORE: { status: 503, retryable: true },
  SPW_ERR_QUERY_BUSY: { status: 503, retryable: true },
  SPW_ERR_WAL_CLOSED: { status: 503, retryable: true },
  SPW_ERR_WAL_IO: { status: 503, retryable: true },
  SPW_ERR_WAL_CORRUPT: { status: 500, retryable: false },
  SPW_ERR_WAL_LOCKED: { status: 500, retryable: false },
  SPW_ERR_WAL_RECORD_TOO_LARGE: { status: 413, retryable: false },
  SPW_ERR_SINK_UNAVAILABLE: { status: 503, retryable: true },
  SPW_ERR_DEADLETTER_IO: { status: 503, retryable: true },
  SPW_ERR_DEADLETTER_FULL: { status: 503, retryable: true },
  SPW_ERR_SINK_REJECTED: { status: 500, retryable: false },
  SPW_ERR_SINK_STORE_LOST: { status: 500, retryable: false },
  SPW_ERR_ADMISSION_QUEUE_FULL: { status: 503, retryable: true },
  SPW_ERR_SERVER_NOT_READY: { status: 503, retryable: true },
  SPW_ERR_SERVER_SHUTTING_DOWN: { status: 503, retryable: true },
  /** The operations port: a path it does not serve, a Prometheus render that failed. */
  SPW_ERR_OPS_NOT_FOUND: { status: 404, retryable: false },
  SPW_ERR_OPS_METRICS_FAILED: { status: 500, retryable: false },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

export function spillwayError(code: ErrorCode, message: string, options?: ErrorOptions): SpillwayError {
  const spec = ERRORS[code]
  return new SpillwayError(code, message, spec.status, spec.retryable, options)
}

export function isSpillwayError(error: unknown, code?: ErrorCode): error is SpillwayError {
  return error instanceof SpillwayError && (code === undefined || error.code === code)
}
