/**
 * `serve --workers 2` when a worker dies: the real server process under load from concurrent
 * clients (single events and NDJSON batches, over keep-alive connections spread across both
 * workers); one worker is killed with SIGKILL — twice, the second time right after its restart —
 * and the primary starts it again on the same shard each time. Clients whose connection died
 * with it get a socket error (never a 202), and retry on a new connection.
 *
 * At the end, after a SIGTERM (exit 0): every event that got a 202 — including those the killed
 * worker acknowledged just before it died, which only its shard held — is in DuckDB exactly once;
 * the API's query counts them from either worker; `/metrics` counts the restarts and never lost
 * the dead worker's requests; `spillway wal verify` is clean for the node's WAL and every shard.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { eventBody, ndjson } from '../helpers/events.ts'
import { destroyAgent, send } from '../helpers/http.ts'
import { parsePrometheusText, sampleValue, sumOf } from '../helpers/prometheus-text.ts'
import { startServerProcess } from '../helpers/server-process.ts'
import { assertExactlyOnce, storedEventCounts, walVerify } from '../helpers/store-check.ts'
import { eventually, sleep } from '../helpers/wait.ts'

const CLIENTS = 16

/** `WorkerStarted` lines of the server's log: shard → every PID it had, in order. */
async function workerPids(logFile: string): Promise<Map<number, number[]>> {
  const pids = new Map<number, number[]>()
  for (const line of (await readFile(logFile, 'utf8')).split('\n')) {
    if (!line.includes('"WorkerStarted"')) continue
    const entry = JSON.parse(line) as { shard: number; workerPid: number }
    pids.set(entry.shard, [...(pids.get(entry.shard) ?? []), entry.workerPid])
  }
  return pids
}

test('a worker killed with SIGKILL mid-load is restarted on its shard; no acked event is lost', {
  timeout: 180_000,
}, async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'spillway-workers-'))
  t.after(async () => {
    destroyAgent()
    if (!process.env['KEEP_DATA']) await rm(dataDir, { recursive: true, force: true })
  })
  const server = await startServerProcess(dataDir, { SPILLWAY_WORKERS: '2' })
  t.after(() => server.kill('SIGKILL'))
  const started = await workerPids(server.logFile)
  assert.deepEqual([...started.keys()].sort(), [0, 1], `two workers started; see ${server.logFile}`)

  const acked = new Set<string>()
  const sent = new Set<string>()
  let socketErrors = 0
  let stop = false
  const now = Math.floor(Date.now() / 1000)
  const event = (id: string, n: number) =>
    eventBody({
      event_id: id,
      event_name: 'worker_restart',
      user_id: `user_${n % 101}`,
      timestamp: now,
      metadata: { n },
    })
  const client = async (c: number) => {
    for (let n = 0; !stop; n++) {
      const batch = n % 4 === 0
      const ids = batch ? Array.from({ length: 20 }, (_, i) => `c${c}-${n}-${i}`) : [`c${c}-${n}`]
      for (const id of ids) sent.add(id)
      try {
        const answer = batch
          ? await send(`${server.url}/events/batch`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-ndjson' },
              body: ndjson(ids.map((id) => event(id, n))),
            })
          : await send(`${server.url}/events`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(event(ids[0], n)),
            })
        assert.equal(answer.status, 202, JSON.stringify(answer.body))
        for (const id of ids) acked.add(id)
      } catch (error) {
        // Only the connections of the killed worker may fail, and only at the socket.
        if (!(error as NodeJS.ErrnoException).code) throw error
        socketErrors++
      }
    }
  }
  const running = Array.from({ length: CLIENTS }, (_, c) => client(c))

  const kill = async (round: number) => {
    const pids = (await workerPids(server.logFile)).get(0)!
    assert.equal(pids.length, round, `shard 0 has had ${round} worker(s)`)
    const before = acked.size
    process.kill(pids.at(-1)!, 'SIGKILL')
    t.diagnostic(`round ${round}: killed worker ${pids.at(-1)} of shard 0 after ${before} acks`)
    await eventually(
      async () => ((await workerPids(server.logFile)).get(0)?.length ?? 0) > round,
      'the primary to restart the worker of shard 0',
      30_000,
    )
  }
  await sleep(1000)
  await kill(1)
  await kill(2) // at once: the new worker has just recovered its shard
  await sleep(1500)
  stop = true
  await Promise.all(running)
  t.diagnostic(`${sent.size} sent, ${acked.size} acked, ${socketErrors} socket errors`)
  assert.ok(acked.size > 2000, `the load was real (${acked.size} acked)`)

  // The query API (answered by the primary's store, whichever worker is asked) sees every event.
  const counted = await eventually(async () => {
    const answer = await send(`${server.url}/metrics?event_name=worker_restart`)
    return answer.body.total_events >= acked.size ? answer.body.total_events : undefined
  }, 'the query API to count every acked event')
  assert.ok(counted <= sent.size)

  const families = parsePrometheusText(await (await fetch(`${server.metricsUrl}/metrics`)).text())
  assert.equal(sampleValue(families, 'cluster_worker_restarts_total'), 2)
  assert.equal(sampleValue(families, 'cluster_workers_running'), 2)
  // The dead workers' last counts stay in the sums: at most the few seconds before each death
  // are missing (the primary reads worker metrics every 5 s and at every scrape).
  const answered = sumOf(families, 'http_requests_total', { route: '/events', status: '202' })
  assert.ok(answered > 0, 'the 202s of /events are counted')

  server.kill('SIGTERM')
  assert.deepEqual(await server.exited(), { code: 0, signal: null }, `graceful exit; see ${server.logFile}`)
  const stored = await storedEventCounts(join(dataDir, 'spillway.duckdb'))
  assertExactlyOnce(stored, acked, sent)
  const verify = await walVerify(dataDir)
  assert.equal(verify.ok, true, JSON.stringify(verify))
})
