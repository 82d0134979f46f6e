/**
 * DuckDB queries are bounded: a query that runs past `timeoutMs` is interrupted and answered with a
 * retryable error, and beyond `queueSize` waiting queries the next is refused at once.
 */
import assert from 'node:assert/strict'
import { type TestContext, test } from 'node:test'
import { DuckDBInstance } from '@duckdb/node-api'
import { DuckDbQueryBackend } from '../../../../src/sinks/duckdb/query.ts'

/** An `events` view so large that any query of it runs for minutes. */
async function slowStore(t: TestContext): Promise<DuckDBInstance> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' })
  const setup = await instance.connect()
  await setup.run(`CREATE VIEW events AS SELECT 'slow' AS event_name, 'web' AS channel,
    'u' || (i % 1000003)::VARCHAR AS user_id, make_timestamp(1700000000000000 + i) AS "timestamp"
    FROM range(10000000000) t(i)`)
  setup.closeSync()
  t.after(() => instance.closeSync())
  return instance
}

test('a query that runs past timeoutMs is interrupted and answered as busy; the next query runs', async (t) => {
  const instance = await slowStore(t)
  const query = new DuckDbQueryBackend(instance, { timeoutMs: 300, queueSize: 4 })
  t.after(() => query.close())
  const started = performance.now()
  await assert.rejects(
    query.totals({ event_name: 'slow' }),
    (error: Error & { code?: string; statusCode?: number }) => {
      assert.equal(error.code, 'SPW_ERR_QUERY_BUSY')
      assert.equal(error.statusCode, 503)
      assert.match(error.message, /did not finish within queryTimeoutMs \(300 ms\); retry/)
      return true
    },
  )
  const elapsed = performance.now() - started
  assert.ok(elapsed < 3000, `answered soon after the timeout (${elapsed} ms)`)
  // The interrupt freed the connection: a cheap query after it is answered.
  const quick = await query.totals({ event_name: 'other' })
  assert.deepEqual(quick, { total_events: 0, unique_users: 0 })
})

test('beyond queueSize waiting queries, the next is refused at once', async (t) => {
  const instance = await slowStore(t)
  const query = new DuckDbQueryBackend(instance, { timeoutMs: 1500, queueSize: 2 })
  t.after(() => query.close())
  // One running, two waiting: the queue is full.
  const held = [1, 2, 3].map(() => query.totals({ event_name: 'slow' }).catch((error: Error) => error))
  const started = performance.now()
  await assert.rejects(query.totals({ event_name: 'slow' }), (error: Error & { code?: string }) => {
    assert.equal(error.code, 'SPW_ERR_QUERY_BUSY')
    assert.match(error.message, /too many queries are waiting \(queryQueueSize 2\); retry/)
    return true
  })
  assert.ok(performance.now() - started < 100, 'refused without waiting')
  // The waiting ones give up at their own deadline rather than after the running one.
  for (const outcome of await Promise.all(held))
    assert.equal((outcome as { code?: string }).code, 'SPW_ERR_QUERY_BUSY')
})
