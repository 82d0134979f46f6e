/**
 * DuckDB failure → delivery verdict. DuckDB reports errors as messages that start with their
 * class (`Conversion Error: …`, `IO Error: …`); the appender reports constraint failures as
 * `Failed to append: NOT NULL constraint failed: …`. The mapping:
 * - the data is refused (constraints, conversions, values out of range, a JS value that cannot
 *   become a DuckDB value) → `permanent`: the same rows would fail again, delivery isolates the
 *   bad events and dead-letters them;
 * - everything else (IO errors, a full disk, out of memory, a lock or a write-write conflict, an
 *   interrupted query, a database invalidated by a fatal error, anything unknown) → `retry`:
 *   an unknown failure must never turn acknowledged events into dead letters (G2 in
 *   docs/ARCHITECTURE.md "Guarantees").
 */
import { spillwayError } from '../../errors.ts'
import type { Verdict } from '../sink.ts'

const DATA_REFUSED =
  /constraint failed|violates .*constraint|Constraint Error|Conversion Error|Invalid Input Error|Out of Range Error|Mismatch Type Error|out of int64 range|cannot be converted/i

/** Messages of a DuckDB database that must be reopened before it works again. */
const FATAL = /FATAL Error|database has been invalidated|INTERNAL Error/i

export function isDataError(error: unknown): boolean {
  // TypeError/RangeError come from building a DuckDB value out of a JS value of the wrong shape.
  if (error instanceof TypeError || error instanceof RangeError) return true
  return DATA_REFUSED.test(messageOf(error))
}

export function isFatalError(error: unknown): boolean {
  return FATAL.test(messageOf(error))
}

export function verdictFor(sinkName: string, error: unknown): Verdict {
  const message = messageOf(error)
  if (isDataError(error)) {
    return {
      kind: 'permanent',
      error: spillwayError('SPW_ERR_SINK_REJECTED', `${sinkName} refused the batch: ${message}`, {
        cause: error,
      }),
    }
  }
  return {
    kind: 'retry',
    error: spillwayError('SPW_ERR_SINK_UNAVAILABLE', `${sinkName} could not store the batch: ${message}`, {
      cause: error,
    }),
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
