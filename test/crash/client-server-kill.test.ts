/**
 * The client against a real `spillway serve` that does not behave: 10,000 events are tracked
 * while the server is SIGKILLed and restarted twice, and between the kills runs with
 * `--queue-size 1` and a 50 ms group-commit delay, so while one request waits for its commit
 * every other gets 503 + Retry-After. The client retries through all of it; at the end every
 * tracked event is in DuckDB exactly once, and the client reports nothing dropped or rejected.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  SpillwayClient,
  type SpillwayClientError,
  type TrackResult,
} from '../../packages/client/src/index.ts'
import { freePort } from '../helpers/clickhouse.ts'
import { destroyAgent } from '../helpers/http.ts'
import { type ServerProcess, startServerProcess } from '../helpers/server-process.ts'
import { assertExactlyOnce, storedEventCounts } from '../helpers/store-check.ts'
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts'
import { eventually, sleep } from '../helpers/wait.ts'

const EVENTS = 10_000

test(`${EVENTS} tracked events are stored exactly once across two server SIGKILLs and a stretch of 503s`, {
  timeout: 180_000,
}, async (t) => {
  const dataDir = await makeTempDir('spillway-client-kill-')
  const port = await freePort()
  let server: ServerProcess | undefined
  let client: SpillwayClient | undefined
  t.after(async () => {
    await client?.close({ timeoutMs: 1 }).catch(() => {})
    server?.kill('SIGKILL')
    destroyAgent()
    await removeTempDir(dataDir)
  })
  const start = (args: string[] = []) =>
    startServerProcess(dataDir, { HTTP_PORT: String(port) }, ['--workers', '1', ...args])
  const kill = async () => {
    server!.kill('SIGKILL')
    assert.equal((await server!.exited()).signal, 'SIGKILL')
  }

  server = await start()
  const errors: SpillwayClientError[] = []
  const retriedStatuses = new Map<string, number>()
  client = new SpillwayClient({
    url: `http://127.0.0.1:${port}`,
    batchEvents: 250,
    flushIntervalMs: 20,
    concurrency: 3,
    maxQueueEvents: 3000,
    overflow: 'block',
    retry: { minMs: 50, maxMs: 500 },
    requestTimeoutMs: 15_000,
    onError: (e) => errors.push(e),
    onRetry: (r) => {
      const key = String(r.status ?? 'network')
      retriedStatuses.set(key, (retriedStatuses.get(key) ?? 0) + 1)
    },
  })

  const tracked = new Set<string>()
  const timestamp = Math.floor(Date.now() / 1000)
  const tracking = (async () => {
    for (let i = 0; i < EVENTS; i++) {
      const result: TrackResult = await client!.track({
        event_name: 'client_kill',
        user_id: `user_${i % 541}`,
        channel: 'api',
        timestamp: timestamp - (i % 600),
        tags: ['client'],
        metadata: { seq: i },
      })
      assert.equal(result.status, 'queued')
      tracked.add(result.event_id)
      // Spread the tracking over the whole scenario instead of queueing everything at once.
      if (i % 100 === 99) await sleep(15)
    }
  })()
  const progress = (n: number) =>
    eventually(
      async () => tracked.size >= n,
      `${n} events tracked (${tracked.size} so far, retries ${JSON.stringify(Object.fromEntries(retriedStatuses))})`,
      60_000,
    )

  await progress(2000)
  await kill()
  await sleep(500)
  server = await start(['--queue-size', '1', '--wal-group-commit-delay-ms', '50'])
  await Promise.all([progress(6000), sleep(2000)])
  await eventually(async () => (retriedStatuses.get('503') ?? 0) >= 3, 'the client retried 503s', 30_000)
  await kill()
  await sleep(500)
  server = await start()

  await tracking
  await client.close({ timeoutMs: 60_000 })
  assert.deepEqual(
    errors.map((e) => e.message),
    [],
  )
  const stats = client.stats
  assert.equal(stats.sent, EVENTS)
  assert.equal(stats.dropped + stats.rejected + stats.queued, 0)
  t.diagnostic(`retries by status: ${JSON.stringify(Object.fromEntries(retriedStatuses))}`)
  t.diagnostic(`client stats: ${JSON.stringify(stats)}`)

  // A clean stop drains the WAL into DuckDB.
  server.kill('SIGTERM')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
  server = undefined
  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assertExactlyOnce(stored, tracked, tracked)
  assert.equal(stored.size, EVENTS)
  assert.ok((retriedStatuses.get('network') ?? 0) > 0, 'the kills were felt as network errors')
})
