/**
 * The `reason` label of `events_rejected_total`: a short, stable name per kind of refusal, taken
 * from the error's code (never its message), so dashboards survive rewording.
 */
export const REJECT_REASONS = [
  'invalid',
  'bad_json',
  'bad_encoding',
  'too_large',
  'conflict',
  'unsupported_media_type',
  'unauthorized',
  'rate_limited',
  'overloaded',
  'shutting_down',
  'storage_unavailable',
  'bad_request',
  'error',
] as const

export type RejectReason = (typeof REJECT_REASONS)[number]

const BY_CODE: Readonly<Record<string, RejectReason>> = {
  SPW_ERR_INTAKE_INVALID: 'invalid',
  SPW_ERR_INTAKE_EMPTY_BATCH: 'invalid',
  SPW_ERR_INTAKE_BAD_JSON: 'bad_json',
  SPW_ERR_INTAKE_BAD_ENCODING: 'bad_encoding',
  SPW_ERR_INTAKE_TOO_LARGE: 'too_large',
  SPW_ERR_INTAKE_TOO_MANY_EVENTS: 'too_large',
  SPW_ERR_INTAKE_CONFLICT: 'conflict',
  SPW_ERR_WAL_RECORD_TOO_LARGE: 'too_large',
  FST_ERR_CTP_BODY_TOO_LARGE: 'too_large',
  SPW_ERR_INTAKE_UNSUPPORTED_MEDIA_TYPE: 'unsupported_media_type',
  SPW_ERR_INTAKE_UNSUPPORTED_ENCODING: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  SPW_ERR_AUTH_MISSING: 'unauthorized',
  SPW_ERR_AUTH_INVALID: 'unauthorized',
  SPW_ERR_ADMISSION_QUEUE_FULL: 'overloaded',
  SPW_ERR_SERVER_SHUTTING_DOWN: 'shutting_down',
  SPW_ERR_WAL_IO: 'storage_unavailable',
  SPW_ERR_WAL_CLOSED: 'storage_unavailable',
  SPW_ERR_DEADLETTER_IO: 'storage_unavailable',
  SPW_ERR_DEADLETTER_FULL: 'overloaded',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
}

export function reasonOf(error: unknown): RejectReason {
  const code = (error as { code?: unknown } | null)?.code
  const known = typeof code === 'string' ? BY_CODE[code] : undefined
  if (known) return known
  const status = (error as { statusCode?: unknown } | null)?.statusCode
  return typeof status === 'number' && status >= 400 && status < 500 ? 'bad_request' : 'error'
}
