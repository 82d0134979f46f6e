/**
 * How ClickHouse says what went wrong: an exception code (`Code: 27, e.displayText() = …` in
 * 18.16, `Code: 27. DB::Exception: …` later, and the `X-ClickHouse-Exception-Code` header where the
 * server sends it) at the start of a non-2xx answer. The codes are grouped by what they mean for
 * a write (src/sinks/clickhouse/verdict.ts decides with them); `describe` puts an answer in one bounded line.
 */

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

/** How much of the server's message goes into the error (and the dead-letter reason). */
export const MAX_REASON_CHARS = 512

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

/** `HTTP 500, Code: 27 CANNOT_PARSE_INPUT_ASSERTION_FAILED: <message>`, bounded. */
export function describe(answer: ClickHouseAnswer): string {
  const code = exceptionCode(answer)
  const name =
    code === undefined ? '' : (DATA_CODES.get(code) ?? THROTTLE_CODES.get(code) ?? SCHEMA_CODES.get(code))
  const text = (answer.body ?? '').trim().replace(/\s+/g, ' ')
  const clipped = text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text
  return `HTTP ${answer.status}${name ? ` (${name})` : ''}${clipped ? `: ${clipped}` : ''}`
}

/** A ClickHouse exception (an answer that is not 2xx), with its code when the server said it. */
export class ClickHouseError extends Error {
  readonly status: number
  readonly code: number | undefined
  constructor(answer: ClickHouseAnswer) {
    super(describe(answer))
    this.name = 'ClickHouseError'
    this.status = answer.status
    this.code = exceptionCode(answer)
  }
}
