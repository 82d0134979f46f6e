/**
 * What `/ready` answers, as every layer builds it: the API (closing, overload), the node's pipeline
 * (WAL, sinks, dedup), a cluster's primary (workers, shards). Shared here so each of them can add
 * its part without importing the others.
 */
import type { WalWriter } from '../wal/writer.ts'

export interface Readiness {
  readonly ok: boolean
  readonly error?: string
  readonly details?: Record<string, unknown>
}

/** A WAL whose writes fail (ENOSPC, EIO…) as /ready shows it; undefined while writes work. */
export async function walWriteFailure(
  wal: WalWriter,
): Promise<{ ok: false; error: string; public: true; failingSince: string } | undefined> {
  const failure = await wal.writeFailure()
  if (!failure) return undefined
  return {
    ok: false,
    error: `WAL writes failing: ${failure.reason}`,
    // The reason is the OS's fixed wording of the errno (no path): clients may read it.
    public: true,
    failingSince: new Date(failure.at).toISOString(),
  }
}
