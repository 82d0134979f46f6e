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
import {
  type ClickHouseAnswer,
  DATA_CODES,
  describe,
  exceptionCode,
  THROTTLE_CODES,
} from '../../connectors/clickhouse/errors.ts'
import { noAnswer } from '../../connectors/http/errors.ts'
import { spillwayError } from '../../errors.ts'
import type { Verdict } from '../sink.ts'
import { delivered } from '../sink.ts'

/** How long a throttled insert waits before its next attempt (the backoff takes it as given). */
export const THROTTLE_MS = 2000

const TOO_MANY_PARTITIONS = /too many partitions for single insert block/i

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
