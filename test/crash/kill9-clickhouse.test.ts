/**
 * The SIGKILL crash test of the embedded default (kill9-duckdb.test.ts), with the ClickHouse sink
 * against a real ClickHouse server (scripts/clickhouse.sh). ClickHouse cannot commit the cursor
 * with the rows, so after every kill delivery re-sends what it had not recorded as delivered: the
 * table holds copies until its merges collapse them. At the end:
 * - `GET /metrics` logic (`uniqExact(event_id)`, before any merge) counts exactly the distinct
 *   events stored, so a copy is never counted;
 * - after `OPTIMIZE … FINAL` every 202-acked event is in ClickHouse exactly once, nothing twice,
 *   nothing that was not sent; and `spillway wal verify` is clean.
 * CRASH_TRIALS sets the number of kills (default 8: the DuckDB test does the long run).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ClickHouseQueryBackend } from '../../src/sinks/clickhouse/query.ts'
import { ClickHouseSink } from '../../src/sinks/clickhouse/sink.ts'
import {
  dropDatabase,
  startClickHouse,
  storedClickHouseCounts,
  uniqueDatabase,
} from '../helpers/clickhouse.ts'
import { runCrashTrials } from '../helpers/crash-trial.ts'
import { destroyAgent } from '../helpers/http.ts'
import { assertExactlyOnce } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'

const TRIALS = Number(process.env['CRASH_TRIALS'] ?? 8)
const CLIENTS = 24

test(`every 202-acked event is in ClickHouse exactly once across ${TRIALS} SIGKILLs`, {
  timeout: 15 * 60_000,
}, async (t) => {
  const clickhouse = await startClickHouse()
  const database = uniqueDatabase('spillway_crash')
  const dataDir = await makeTempDir('spillway-crash-ch-')
  t.after(async () => {
    destroyAgent()
    if (!process.env['KEEP_DATA']) {
      await dropDatabase(clickhouse, database)
      await removeTempDir(dataDir)
    }
    await clickhouse.stop()
  })
  // The table first. Merges stop before the last three trials, so the copies those re-deliver stay
  // until the end and the count below is taken over them (not over whatever the background
  // merges left); earlier trials merge as usual, which keeps the parts well below
  // parts_to_throw_insert however many trials run.
  const sink = new ClickHouseSink({ url: clickhouse.url, database })
  await sink.open()
  const { acked, sent } = await runCrashTrials({
    dataDir,
    trials: TRIALS,
    clients: CLIENTS,
    env: { SPILLWAY_SINKS: 'clickhouse', CLICKHOUSE_URL: clickhouse.url, CLICKHOUSE_DATABASE: database },
    beforeTrial: async (trial) => {
      if (trial === Math.max(0, TRIALS - 3)) await clickhouse.query(`SYSTEM STOP MERGES ${database}.events`)
    },
  })

  const totals = await new ClickHouseQueryBackend(sink).totals({ event_name: 'crash_test' })
  const parts = await clickhouse.query(
    `SELECT count() FROM system.parts WHERE database = '${database}' AND table = 'events' AND active`,
  )
  await sink.close()
  await clickhouse.query(`SYSTEM START MERGES ${database}.events`)
  const { merged, rowsBefore, uniqueBefore } = await storedClickHouseCounts(clickhouse, database)
  assert.equal(totals.total_events, uniqueBefore, 'the /metrics count is the distinct events, copies or not')
  assert.equal(merged.size, uniqueBefore)
  assertExactlyOnce(merged, acked, sent, 'ClickHouse')
  t.diagnostic(
    `${TRIALS} kills, ${sent.size} sent, ${acked.size} acked, ${uniqueBefore} stored; ${rowsBefore - uniqueBefore} re-delivered copies in ${parts.trim()} parts before the merge`,
  )
  assert.ok(acked.size > TRIALS * 50, `the load was real (${acked.size} acked)`)
})
