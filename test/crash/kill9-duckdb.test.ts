/**
 * G1 + G2 (docs/ARCHITECTURE.md "Guarantees") + exactly-once under SIGKILL, against the real
 * server process and the real DuckDB file:
 * clients send events concurrently (single and NDJSON batches), the server is killed with SIGKILL at
 * a random moment, restarted, and killed again (helpers/crash-trial.ts). At the end every event that
 * got a 202 is in DuckDB exactly once, no event is there twice, and `spillway wal verify` is clean.
 * CRASH_TRIALS sets the number of kills (default 20).
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { runCrashTrials } from '../helpers/crash-trial.ts'
import { destroyAgent } from '../helpers/http.ts'
import { assertExactlyOnce, storedEventCounts } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

const TRIALS = Number(process.env['CRASH_TRIALS'] ?? 20)
const CLIENTS = 24

test(`every 202-acked event is in DuckDB exactly once across ${TRIALS} SIGKILLs`, {
  timeout: 15 * 60_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-crash-')
  t.after(async () => {
    destroyAgent()
    await removeTempDir(dataDir)
  })
  const { acked, sent } = await runCrashTrials({ dataDir, trials: TRIALS, clients: CLIENTS })

  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assertExactlyOnce(stored, acked, sent)
  t.diagnostic(`${TRIALS} kills, ${sent.size} sent, ${acked.size} acked, ${stored.size} stored`)
  assert.ok(acked.size > TRIALS * 50, `the load was real (${acked.size} acked)`)
})
