/**
 * ClickHouse answer → delivery verdict. ClickHouse names its failures by number (`Code: 27,
 * e.displayText() = …` in 18.16, `Code: 27. DB::Exception: …` later, and the
 * `X-ClickHouse-Exception-Code` header where the server sends it), and the HTTP status says little
 * (18.16 answers 500 for most of them), so the decision reads the code, as Vector's ClickHouse
 * sink does (`Code: 117` → don't retry):
 * - the data is refused — a value cannot be parsed or does not fit its column (DATA_CODES) →
 *   `permanent`: delivery halves the batch until the refused rows stand alone, dead-letters them
 *   with the server's message and delivers the rest. TYPE_MISMATCH (53) and CANNOT_CONVERT_TYPE
 *   (70) are deliberately not in the list: every row the sink sends has the same shape, so they
 *   mean a table whose columns do not match (a schema to fix), which would refuse every row alike
 *   and turn the whole backlog into dead letters one halving at a time;
 * - TOO_MANY_PARTS (252) "Too many partitions for single INSERT block" is a property of the
 *   batch, not of a row (events of more than `max_partitions_per_insert_block` days in one
 *   insert) → `permanent` too: halving cuts the batch into pieces the server takes, and a single
 *   event is never refused for it;
 * - everything else → `retry`: too many parts (merges are behind: wait longer, THROTTLE_MS),
 *   memory limits, timeouts, a server shutting down, a table or database that is missing (the
 *   sink creates it again before the next attempt), authentication and permissions (a
 *   configuration to fix, not data to drop), syntax errors (a bug of ours), unknown codes, 5xx
 *   without a code, and no answer at all. An unknown failure must never turn acknowledged events
 *   into dead letters (G2, docs/ARCHITECTURE.md "Guarantees").
 * An answer without a code is judged like the http sink judges one: 2xx delivered; 408, 429 and
 * 5xx retry; 401/403/404/407 retry (a proxy or a configuration in the way); other 4xx permanent.
 */
import { spillwayError } from '../../errors.ts'
import type { Verdict } from '../sink.ts'
import { delivered } from '../sink.ts'

/** Codes of refused data: the same rows would be refused again. */
export const DATA_CODES: ReadonlyMap<number, string> = new Map([
  [6, 'CANNOT_PARSE_TEXT'],
  [25, 'CANNOT_PARSE_ESCAPE_SEQUENCE'],
  [26, 'CANNOT_PARSE_QUOTED_STRING'],
  [27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED'],
  [38, 'CANNOT_PARSE_DATE'],
  [41, 'CANNOT_PARSE_DATETIME'],
  [72, 'CANNOT_PARSE_NUMBER'],
  [117, 'INCORRECT_DATA'],
  [128, 'TOO_LARGE_ARRAY_SIZE'],
  [130, 'CANNOT_READ_ARRAY_FROM_TEXT'],
  [131, 'TOO_LARGE_STRING_SIZE'],
  [321, 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE'],
  [349, 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN'],
  [376, 'CANNOT_PARSE_UUID'],
  [407, 'DECIMAL_OVERFLOW'],
  [441, 'CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING'],
  [467, 'CANNOT_PARSE_BOOL'],
  [632, 'UNEXPECTED_DATA_AFTER_PARSED_VALUE'],
  [675, 'CANNOT_PARSE_IPV4'],
  [676, 'CANNOT_PARSE_IPV6'],
])

/** Codes that retry after a longer pause: the server asks for time (merges, memory, load). */
export const THROTTLE_CODES: ReadonlyMap<number, string> = new Map([
  [202, 'TOO_MANY_SIMULTANEOUS_QUERIES'],
  [241, 'MEMORY_LIMIT_EXCEEDED'],
  [252, 'TOO_MANY_PARTS'],
])

/** Codes after which the sink checks its database and table again (they may have been dropped). */
export const SCHEMA_CODES: ReadonlyMap<number, string> = new Map([
  [16, 'NO_SUCH_COLUMN_IN_TABLE'],
  [60, 'UNKNOWN_TABLE'],
  [81, 'UNKNOWN_DATABASE'],
])

/** How long a throttled insert waits before its next attempt (the backoff takes it as given). */
export const THROTTLE_MS = 2000

/** How much of the server's message goes into the error (and the dead-letter reason). */
export const MAX_REASON_CHARS = 512

const TOO_MANY_PARTITIONS = /too many partitions for single insert block/i

export interface ClickHouseAnswer {
  readonly status: number
  /** `X-ClickHouse-Exception-Code`, when the server sent it. */
  readonly codeHeader?: string
  /** The start of the response body. */
  readonly body?: string
}

/** The exception code of an answer: the header, else `Code: NNN` at the start of the body. */
export function exceptionCode(answer: ClickHouseAnswer): number | undefined {
  const header = Number(answer.codeHeader)
  if (answer.codeHeader && Number.isInteger(header) && header > 0) return header
  const match = /^\s*Code: (\d+)/.exec(answer.body ?? '')
  return match ? Number(match[1]) : undefined
}

export type Judgement = 'delivered' | 'permanent' | 'retry' | 'throttle'

/** The decision alone, for the table test. */
export function judge(answer: ClickHouseAnswer): Judgement {
  const { status } = answer
  const code = exceptionCode(answer)
  if (code === undefined) {
    if (status >= 200 && status < 300) return 'delivered'
    if (status === 429) return 'throttle'
    if (status === 408 || status >= 500 || status < 400) return 'retry'
    if (status === 401 || status === 403 || status === 404 || status === 407) return 'retry'
    return 'permanent'
  }
  if (DATA_CODES.has(code)) return 'permanent'
  if (code === 252 && TOO_MANY_PARTITIONS.test(answer.body ?? '')) return 'permanent'
  if (THROTTLE_CODES.has(code)) return 'throttle'
  return 'retry'
}

/** `where` names the server (never with credentials). */
export function verdictForAnswer(sink: string, where: string, answer: ClickHouseAnswer): Verdict {
  const judgement = judge(answer)
  if (judgement === 'delivered') return delivered
  const said = describe(answer)
  if (judgement === 'permanent') {
    return {
      kind: 'permanent',
      error: spillwayError('SPW_ERR_SINK_REJECTED', `${sink}: ${where} refused the rows: ${said}`),
    }
  }
  return {
    kind: 'retry',
    error: spillwayError('SPW_ERR_SINK_UNAVAILABLE', `${sink}: ${where} answered ${said}`),
    ...(judgement === 'throttle' && { afterMs: THROTTLE_MS }),
  }
}

/** No answer at all (refused, reset, timed out): always a retry. */
export function verdictForError(sink: string, where: string, error: unknown): Verdict {
  return { kind: 'retry', error: noAnswer(sink, where, error) }
}

export function noAnswer(sink: string, where: string, error: unknown): Error {
  const err = error instanceof Error ? error : new Error(String(error))
  const code = (err as NodeJS.ErrnoException).code
  const detail = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message
  return spillwayError('SPW_ERR_SINK_UNAVAILABLE', `${sink}: no answer from ${where} (${detail})`, {
    cause: err,
  })
}

/** `HTTP 500, Code: 27 CANNOT_PARSE_INPUT_ASSERTION_FAILED: <message>`, bounded. */
export function describe(answer: ClickHouseAnswer): string {
  const code = exceptionCode(answer)
  const name =
    code === undefined ? '' : (DATA_CODES.get(code) ?? THROTTLE_CODES.get(code) ?? SCHEMA_CODES.get(code))
  const text = (answer.body ?? '').trim().replace(/\s+/g, ' ')
  const clipped = text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text
  return `HTTP ${answer.status}${name ? ` (${name})` : ''}${clipped ? `: ${clipped}` : ''}`
}
