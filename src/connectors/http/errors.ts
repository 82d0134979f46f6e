/** How a request that got no HTTP answer reads, for the ClickHouse client and the `http` sink. */
import { spillwayError } from '../../errors.ts'

/**
 * The error of a request that got no answer (refused, reset, timed out, DNS, TLS), with the system
 * code (ECONNREFUSED…) in it. `who` names the sink, `where` the server (never its credentials).
 */
export function noAnswer(who: string, where: string, error: unknown): Error {
  const err = error instanceof Error ? error : new Error(String(error))
  const code = (err as NodeJS.ErrnoException).code
  const detail = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message
  return spillwayError('SPW_ERR_SINK_UNAVAILABLE', `${who}: no answer from ${where} (${detail})`, {
    cause: err,
  })
}
